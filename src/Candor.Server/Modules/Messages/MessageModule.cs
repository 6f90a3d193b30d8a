using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Messages;

/// <summary>Message delivery to local accounts by the rules of RFC 6121 §8.5.2 (bare JID) and §8.5.3 (full JID).</summary>
public sealed class MessageModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("RFC 6121 §5, §8.5", "", "message delivery by type and priority; errors instead of silent discard"),
    ];

    public void Register(XmppServer server)
    {
        server.Hooks.MessageToBare.Add(ev => ToBareAsync(server, ev), Priority.Fallback);
        server.Hooks.MessageToFull.Add(ev => ToFullAsync(server, ev), Priority.Fallback);
    }

    private static ValueTask<bool> ToFullAsync(XmppServer server, StanzaEvent ev)
    {
        var session = server.Sessions.Get(ev.To);
        if (session is null) return ToAbsentResourceAsync(server, ev);
        session.Send(ev.Stanza);
        return ValueTask.FromResult(true);
    }

    private static async ValueTask<bool> ToAbsentResourceAsync(XmppServer server, StanzaEvent ev)
    {
        // §8.5.3.2.1: no such resource — groupchat gets an error, error is dropped, the rest go to the bare JID.
        switch (ev.Type)
        {
            case "error":
                return true;
            case "groupchat":
                await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable);
                return true;
            default:
                return await ToBareOtherwiseAsync(server, ev);
        }
    }

    private static ValueTask<bool> ToBareAsync(XmppServer server, StanzaEvent ev)
    {
        // The common case, without a state machine: a chat or normal message to an account with an available resource.
        if (ev.Type is null or "chat" or "normal" && DeliverToBest(server.Sessions.Get(ev.To.Local!), ev.Stanza))
            return ValueTask.FromResult(true);
        return ToBareOtherwiseAsync(server, ev);
    }

    private static async ValueTask<bool> ToBareOtherwiseAsync(XmppServer server, StanzaEvent ev)
    {
        var user = ev.To.Local!;
        var type = ev.Type;
        if (type == "error") return true;
        if (!await server.Router.AccountExistsAsync(user))
        {
            await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable, "no such account");
            return true;
        }
        if (type == "groupchat")
        {
            await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable, "groupchat messages go to a chat room");
            return true;
        }
        var sessions = server.Sessions.Get(user);
        if (type == "headline")
        {
            // Headlines are not worth storing: every available non-negative resource, or nobody (§8.5.2.1.1).
            foreach (var s in sessions)
                if (s.IsAvailable && s.Priority >= 0) s.Send(ev.Stanza);
            return true;
        }
        if (DeliverToBest(sessions, ev.Stanza)) return true;
        if (await server.Hooks.MessageOffline.FireAsync(ev)) return true;
        await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable, "the recipient is offline and offline storage is off");
        return true;
    }

    /// <summary>
    /// A chat or normal message to the bare JID goes to the most available resources, those with the highest
    /// non-negative priority; false when there is none.
    /// </summary>
    public static bool DeliverToBest(IReadOnlyList<Session> sessions, Element stanza)
    {
        var best = BestPriority(sessions);
        if (best < 0) return false;
        // Indexed: foreach over the interface allocates an enumerator per message.
        for (var i = 0; i < sessions.Count; i++)
            if (sessions[i] is { IsAvailable: true } s && s.Priority == best) s.Send(stanza);
        return true;
    }

    /// <summary>The priority of the resources a chat or normal message to the bare JID goes to; negative when none.</summary>
    public static int BestPriority(IReadOnlyList<Session> sessions)
    {
        var best = int.MinValue;
        for (var i = 0; i < sessions.Count; i++)
            if (sessions[i] is { IsAvailable: true } s && s.Priority >= 0 && s.Priority > best) best = s.Priority;
        return best;
    }
}
