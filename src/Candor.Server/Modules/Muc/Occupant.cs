using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>Someone in a room: their nick, the real (full) JID they joined from, role and affiliation, and last presence.</summary>
public sealed class Occupant(string nick, Jid realJid, string occupantId, bool isRemote = false)
{
    public string Nick { get; set; } = nick;
    public Jid RealJid { get; } = realJid;
    public string RealJidText { get; } = realJid.ToString();
    /// <summary>XEP-0421: stable for the same bare JID in the same room, and says nothing about it.</summary>
    public string OccupantId { get; } = occupantId;
    /// <summary>Joined from another server (federation): reached through the router, not a local session.</summary>
    public bool IsRemote { get; } = isRemote;
    public Role Role { get; set; }
    public Affiliation Affiliation { get; set; }
    /// <summary>The occupant's presence content (show, status, caps ...) without MUC extensions, shown to the others.</summary>
    public IReadOnlyList<Element> PresenceContent { get; set; } = [];

    public bool IsModerator => Role == Role.Moderator;

    /// <summary>What of an occupant's presence the room passes on: everything but MUC elements, hats (the room's to give) and errors.</summary>
    public static List<Element> ContentOf(Element presence)
    {
        var content = new List<Element>();
        foreach (var child in presence.Elements)
            if (!child.Namespace.StartsWith(Room.MucNs, StringComparison.Ordinal) && !child.Is("error", Ns.Client)
                && child.Namespace != Room.OccupantIdNs && child.Namespace != Room.HatsNs)
                content.Add(child);
        return content;
    }
}
