using Candor.Server.Core;
using Candor.Server.Modules.Archive;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// Multi-user chat (XEP-0045) as a service at its own domain (MucDomain, conference.DOMAIN by default), listed
/// in the server's disco#items. Rooms live in memory; persistent ones are kept with their configuration,
/// affiliations and subject in the "muc_rooms" key-value store. Archived rooms keep their messages in the
/// "muc_archive" archive store (XEP-0313 on the room JID), which the history on entering is read from.
/// </summary>
public sealed class MucModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0045", "1.35", "chat rooms at MucDomain: instant and reserved rooms, history (from the room archive when archived), roles, affiliations, admin use cases, invitations, registration, voice requests, IQs to occupants; occupants from other servers over federation"),
        new("XEP-0249", "1.2", "direct invitations pass between clients; rooms advertise jabber:x:conference"),
        new("XEP-0359", "0.7.0", "rooms stamp each groupchat message with their stanza-id"),
        new("XEP-0425", "0.3.0", "moderators retract messages for everyone; the 0.2 form (message-moderate:0 in apply-to) too"),
        new("XEP-0410", "1.1.0", "a ping to one's own occupant JID is answered by the room"),
        new("XEP-0421", "1.0.1", "occupant ids, stable per room and bare JID, in presence and messages"),
        new("XEP-0313", "0.8.0", "room archives on the room JID (muc#roomconfig_enablearchiving), same queries and paging as account archives; status 170 on entering a logged room"),
        new("XEP-0317", "0.2", "hats: admins and owners assign and remove them by bare JID with the room's ad-hoc commands (XEP-0050 don/doff); occupants' presence shows them"),
        new("XEP-0128", "1.0.1", "the roominfo form says whether a room is archived and for how long, and lists its blocked words"),
    ];

    public void Register(XmppServer server)
    {
        var domain = server.Options.MucDomain;
        if (string.IsNullOrEmpty(domain)) return;
        var (archive, writer) = ArchiveModule.Open(server, "muc_archive", server.Options.MucArchiveRetentionDays);
        var service = new MucService(server, Jid.Parse(domain), server.Storage.OpenKeyValue("muc_rooms"), archive, writer);
        server.Components.Add(domain, service.HandleAsync);
        server.Disco.ServerItems.Add((service.Jid, "Chat rooms"));
        // Before the presence module's fallback sends directed unavailable presence: the session leaves its rooms first.
        server.Hooks.SessionEnded.Add(service.SessionEndedAsync);
    }
}
