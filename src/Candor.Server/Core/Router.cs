using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Core;

/// <summary>
/// Decides where a stanza goes (RFC 6120 §10, RFC 6121 §8.5) and hands it to the hook for that route;
/// the modules behind the hooks implement what happens there; stanzas for other domains go to federation.
/// </summary>
public sealed class Router(XmppServer server)
{
    /// <summary>Routes a stanza a local session sent. 'from' has been stamped and 'to' parsed (null when absent).</summary>
    /// <remarks>
    /// Not an async method, nor is the routing of a message to a local account below: when every hook finishes
    /// synchronously (a chat message to an online account, the common case), no state machine runs.
    /// </remarks>
    public ValueTask RouteFromSessionAsync(Session origin, Element stanza, Jid? to)
    {
        var hooks = server.Hooks;
        if (to is null && stanza.IsPresence())
            return Completion(hooks.PresenceBroadcast.FireAsync(new StanzaEvent(server, origin, stanza, origin.Jid, origin.BareJid)));
        // A message or IQ without 'to' is addressed to the sender's own account (RFC 6120 §10.3).
        var ev = new StanzaEvent(server, origin, stanza, origin.Jid, to ?? origin.BareJid);
        var pre = stanza.Name switch
        {
            "message" => hooks.PreMessage,
            "presence" => hooks.PrePresence,
            _ => hooks.PreIq,
        };
        var handling = pre.FireAsync(ev);
        if (!handling.IsCompletedSuccessfully) return RouteUnlessHandledAsync(handling, ev);
        return handling.Result ? ValueTask.CompletedTask : RouteAsync(ev);
    }

    private static ValueTask Completion(ValueTask<bool> handling) =>
        handling.IsCompletedSuccessfully ? ValueTask.CompletedTask : new ValueTask(handling.AsTask());

    private async ValueTask RouteUnlessHandledAsync(ValueTask<bool> handling, StanzaEvent ev)
    {
        if (!await handling) await RouteAsync(ev);
    }

    /// <summary>Delivers a stanza that does not come from a local session (the server's own, or a reply).</summary>
    public ValueTask DeliverAsync(Element stanza, Jid from, Jid to) =>
        RouteAsync(new StanzaEvent(server, null, stanza, from, to));

    private ValueTask RouteAsync(StanzaEvent ev)
    {
        var to = ev.To;
        if (to.Domain != server.Domain.Domain || !ev.Stanza.IsMessage()) return RouteOtherAsync(ev);
        var hooks = server.Hooks;
        var handling = (to.Local is null ? hooks.MessageToHost : to.IsBare ? hooks.MessageToBare : hooks.MessageToFull).FireAsync(ev);
        return handling.IsCompletedSuccessfully && handling.Result ? ValueTask.CompletedTask : RefuseUnhandledAsync(handling, ev);
    }

    /// <summary>A message no hook handled is refused, never dropped in silence.</summary>
    private static async ValueTask RefuseUnhandledAsync(ValueTask<bool> handling, StanzaEvent ev)
    {
        if (!await handling) await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable);
    }

    private async ValueTask RouteOtherAsync(StanzaEvent ev)
    {
        var to = ev.To;
        var hooks = server.Hooks;
        if (to.Domain != server.Domain.Domain)
        {
            // A service at its own domain (MUC): everything addressed to the domain or its JIDs is its to answer.
            if (server.Components.TryGetValue(to.Domain, out var component))
            {
                await component(ev);
                return;
            }
            // Another domain: federation sends it (RFC 6120 §10.4); without it, every kind of stanza, presence too,
            // gets remote-server-not-found (RFC 6120 §10.4.3); errors are not answered (RFC 6120 §8.3.1).
            if (server.S2s is { } s2s) await s2s.SendAsync(ev);
            else await ev.ReplyErrorAsync(StanzaError.RemoteServerNotFound, $"{to.Domain} is not served here, and federation is disabled on this server.");
            return;
        }
        if (ev.Stanza.IsPresence()) await (to.Local is null ? hooks.PresenceToHost : to.IsBare ? hooks.PresenceToBare : hooks.PresenceToFull).FireAsync(ev);
        else await RouteIqAsync(ev);
    }

    private async ValueTask<bool> RouteIqAsync(StanzaEvent ev)
    {
        var type = ev.Type;
        var isRequest = type is "get" or "set";
        if (ev.To.Local is not null && !ev.To.IsBare)
        {
            var target = server.Sessions.Get(ev.To);
            if (target is not null) target.Send(ev.Stanza);
            else if (isRequest) await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable);
            return true;
        }
        // Results and errors addressed to the server or an account answer the server's own requests, or nothing.
        if (!isRequest)
        {
            server.OutboundIq.TryComplete(ev.From, ev.Stanza);
            return true;
        }
        var payload = ev.Stanza.FirstElement;
        if (payload is null || ev.Stanza.Elements.Skip(1).Any())
        {
            await ev.ReplyErrorAsync(StanzaError.BadRequest, "An IQ get or set carries exactly one child element.");
            return true;
        }
        var scope = ev.To.Local is null ? IqScope.Server : IqScope.Account;
        if (scope == IqScope.Account && !await AccountExistsAsync(ev.To.Local!))
        {
            await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable);
            return true;
        }
        var handler = server.Iq.Find(scope, type == "set", payload);
        if (handler is null)
        {
            await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable);
            return true;
        }
        Element? reply;
        try
        {
            reply = await handler(new IqRequest(ev, payload));
        }
        catch (Storage.SealedRecordException)
        {
            // Reported in the log by the store; the requester learns why, and its stream goes on.
            await ev.ReplyErrorAsync(StanzaError.InternalServerError, "A stored record failed its integrity check; the operator has been told.");
            return true;
        }
        if (reply is null) return true;
        if (reply.Type() == "error") server.Metrics.StanzaError(reply);
        // The request may have changed the session's state (carbons, roster interest): other nodes know it before the client does.
        if (server.Cluster is { } cluster && ev.Origin is { } origin) await cluster.SettledAsync(origin);
        await DeliverAsync(reply, ev.To, ev.From);
        return true;
    }

    /// <summary>An account with a bound session certainly exists; otherwise ask the store.</summary>
    public async ValueTask<bool> AccountExistsAsync(string user) =>
        server.Sessions.Get(user).Count > 0 || await server.Accounts.ExistsAsync(user);
}
