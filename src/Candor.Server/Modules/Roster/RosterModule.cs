using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Roster;

/// <summary>Roster get and set (RFC 6121 §2) with roster versioning (XEP-0237).</summary>
public sealed class RosterModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("RFC 6121 §2", "", "roster management, pushes to interested resources"),
        new("XEP-0237", "1.3", "roster versioning (a changed version returns the whole roster)"),
    ];

    public void Register(XmppServer server)
    {
        server.Rosters = new RosterManager(server);
        server.Iq.Register(IqScope.Account, "get", "query", Ns.Roster, request => GetAsync(server, request));
        server.Iq.Register(IqScope.Account, "set", "query", Ns.Roster, request => SetAsync(server, request));
        server.StreamFeatures.AfterAuthentication.Add(() => new Element("ver", Ns.RosterVersioning));
    }

    private static async ValueTask<Element?> GetAsync(XmppServer server, IqRequest request)
    {
        if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "a roster belongs to its account alone");
        if (request.Origin is { } origin) origin.IsInterested = true;
        var user = request.From.Local!;
        var version = await server.Rosters.GetVersionAsync(user);
        if (request.Payload.GetAttribute("ver") == version) return request.Result();
        var query = new Element("query", Ns.Roster).SetAttribute("ver", version);
        foreach (var item in await server.Rosters.GetAllAsync(user))
            if (!item.Hidden) query.Add(RosterManager.ToElement(item));
        return request.Result(query);
    }

    private static async ValueTask<Element?> SetAsync(XmppServer server, IqRequest request)
    {
        if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "a roster belongs to its account alone");
        var items = request.Payload.Elements.ToList();
        if (items.Count != 1 || !items[0].Is("item", Ns.Roster))
            return request.Error(StanzaError.BadRequest, "a roster set carries exactly one item");
        var element = items[0];
        if (!Jid.TryParse(element.GetAttribute("jid"), out var contact))
            return request.Error(StanzaError.JidMalformed, "the item's jid is not a valid JID");
        contact = contact.Bare;
        var user = request.From.Local!;
        var existing = await server.Rosters.GetAsync(user, contact);

        if (element.GetAttribute("subscription") == "remove")
        {
            if (existing is null) return request.Error(StanzaError.ItemNotFound, "no such contact in the roster");
            await RemoveContactAsync(server, request.From.Bare, contact, existing);
            return request.Result();
        }

        var groups = element.Elements.Where(e => e.Is("group", Ns.Roster)).Select(e => e.Text).ToList();
        if (groups.Any(g => g.Length == 0) || groups.Distinct(StringComparer.Ordinal).Count() != groups.Count)
            return request.Error(StanzaError.BadRequest, "group names must be non-empty and distinct");
        if (existing is null && await server.Rosters.CountAsync(user) >= server.Options.MaxRosterItems)
            return request.Error(StanzaError.NotAllowed, $"the roster is full ({server.Options.MaxRosterItems} contacts)");

        var item = existing ?? new RosterItem { Jid = contact.ToString() };
        item.Name = string.IsNullOrEmpty(element.GetAttribute("name")) ? null : element.GetAttribute("name");
        item.Groups = groups;
        item.Hidden = false;
        await server.Rosters.SaveAsync(user, item);
        return request.Result();
    }

    /// <summary>RFC 6121 §2.5.3: removing a contact also cancels the subscriptions both ways.</summary>
    private static async Task RemoveContactAsync(XmppServer server, Jid user, Jid contact, RosterItem item)
    {
        await server.Rosters.RemoveAsync(user.Local!, item.Jid);
        if (item.SubscribedTo || item.PendingOut)
            await SendSubscriptionAsync(server, user, contact, "unsubscribe");
        if (item.SubscribedFrom || item.PendingIn)
            await SendSubscriptionAsync(server, user, contact, "unsubscribed");
    }

    private static ValueTask SendSubscriptionAsync(XmppServer server, Jid from, Jid to, string type)
    {
        var presence = new Element("presence", Ns.Client)
            .SetAttribute("from", from.ToString()).SetAttribute("to", to.ToString()).SetAttribute("type", type);
        return server.Router.DeliverAsync(presence, from, to);
    }
}
