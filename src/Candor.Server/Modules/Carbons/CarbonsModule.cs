using Candor.Server.Core;
using Candor.Server.Modules.Messages;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Carbons;

/// <summary>
/// Message Carbons (XEP-0280): a resource that enabled carbons gets a copy of every instant message its account
/// sends from another resource (&lt;sent/&gt;) or receives on another resource (&lt;received/&gt;), so all of a
/// user's devices see both sides of a conversation. Which messages are copied follows the XEP's suggested rules,
/// advertised as urn:xmpp:carbons:rules:0.
/// </summary>
public sealed class CarbonsModule : IModule
{
    public const string Namespace = "urn:xmpp:carbons:2";
    public const string RulesFeature = "urn:xmpp:carbons:rules:0";
    private const string Forward = "urn:xmpp:forward:0";
    private const string Hints = "urn:xmpp:hints";
    private const string MucUser = "http://jabber.org/protocol/muc#user";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0280", "1.0.1", "sent and received copies; <private/> and XEP-0334 <no-copy/> respected; chat, and normal with a body, copied (urn:xmpp:carbons:rules:0)"),
        new("XEP-0297", "1.0", "forwarded messages inside carbon copies"),
    ];

    public void Register(XmppServer server)
    {
        server.Disco.ServerFeatures.Add(Namespace);
        server.Disco.ServerFeatures.Add(RulesFeature);
        foreach (var scope in (IqScope[])[IqScope.Account, IqScope.Server])
        {
            server.Iq.Register(scope, "set", "enable", Namespace, request => Toggle(request, on: true));
            server.Iq.Register(scope, "set", "disable", Namespace, request => Toggle(request, on: false));
        }
        // Observe: copies are made before delivery, after the filters (policy, blocking) let the message through.
        server.Hooks.PreMessage.Add(ev => SendCopies(server, ev), Priority.Observe);
        server.Hooks.MessageToBare.Add(ev => ReceivedCopies(server, ev), Priority.Observe);
        server.Hooks.MessageToFull.Add(ev => ReceivedCopies(server, ev), Priority.Observe);
    }

    private static ValueTask<Element?> Toggle(IqRequest request, bool on)
    {
        // Only a client of this server, for itself (XEP-0280 §4.1: not-allowed otherwise).
        if (request.Origin is not { } session || (request.To.Local is not null && !request.IsSelf))
            return ValueTask.FromResult<Element?>(request.Error(StanzaError.NotAllowed, "carbons are enabled by a client for itself"));
        session.Carbons = on;
        return ValueTask.FromResult<Element?>(request.Result());
    }

    /// <summary>The XEP's suggested rules (§6): chat, or normal with a body; never from a chat room; never marked private or no-copy.</summary>
    private static bool Eligible(Element message)
    {
        var type = message.Type();
        if (type is not (null or "normal" or "chat")) return false;
        var chat = type == "chat";
        var body = false;
        foreach (var child in message.Elements)
        {
            if (child.Is("private", Namespace) || child.Is("no-copy", Hints) || child.Is("x", MucUser)) return false;
            if (child.Is("body", Ns.Client)) body = true;
        }
        return chat || body;
    }

    private static ValueTask<bool> SendCopies(XmppServer server, StanzaEvent ev)
    {
        var origin = ev.Origin!;
        // A message to one's own account is copied on the receiving side only.
        if (ev.To.Local == origin.User && ev.To.Domain == server.Domain.Domain) return ValueTask.FromResult(false);
        var sessions = server.Sessions.Get(origin.User);
        if (sessions.Count < 2 || !Eligible(ev.Stanza)) return ValueTask.FromResult(false);
        foreach (var session in sessions)
            if (session != origin && session.Carbons) session.Send(Wrap("sent", ev.Stanza, session));
        return ValueTask.FromResult(false);
    }

    private static ValueTask<bool> ReceivedCopies(XmppServer server, StanzaEvent ev)
    {
        var stanza = ev.Stanza;
        var sessions = server.Sessions.Get(ev.To.Local!);
        var isPrivate = stanza.GetChild("private", Namespace) is not null;
        if (isPrivate)
        {
            // §7: the receiving server SHOULD remove <private/> before delivering to the recipient.
            stanza.RemoveChildren(n => n is Element e && e.Is("private", Namespace));
            return ValueTask.FromResult(false);
        }
        if (sessions.Count < 2 || !Eligible(stanza)) return ValueTask.FromResult(false);
        var direct = ev.To.IsBare ? null : server.Sessions.Get(ev.To);
        var best = direct is null ? MessageModule.BestPriority(sessions) : int.MinValue;
        foreach (var session in sessions)
        {
            if (!session.Carbons || session == ev.Origin || session == direct) continue;
            // Those RFC 6121 gives the original to (the most available resources, for the bare JID) get no copy.
            if (direct is null && best >= 0 && session.IsAvailable && session.Priority == best) continue;
            session.Send(Wrap("received", stanza, session));
        }
        return ValueTask.FromResult(false);
    }

    private static Element Wrap(string direction, Element message, Session to) =>
        new Element("message", Ns.Client)
            .SetAttribute("from", to.BareJid.ToString())
            .SetAttribute("to", to.Jid.ToString())
            .SetAttribute("type", message.Type() ?? "normal")
            .Add(new Element(direction, Namespace).Add(new Element("forwarded", Forward).Add(message)));
}
