using Candor.Server.Connections;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Core;

/// <summary>
/// What happens to a stanza a bound session sends, whatever the transport: addresses checked and 'from'
/// stamped (RFC 6120 §8.1.2.1), malformed stanzas answered with their error, then routing.
/// </summary>
public static class SessionInput
{
    private static readonly string[] PresenceTypes = ["unavailable", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error"];

    /// <remarks>Not an async method: a stanza whose routing finishes synchronously runs no state machine here.</remarks>
    public static ValueTask HandleAsync(XmppServer server, Session session, Element stanza)
    {
        var from = stanza.GetAttribute("from");
        if (from is not null && from != session.Jid.ToString()
            && (!Jid.TryParse(from, out var claimed) || (claimed != session.Jid && claimed != session.BareJid)))
            throw new StreamErrorException(StreamErrors.InvalidFrom, "'from' must be your own address");
        stanza.SetAttribute("from", session.Jid.ToString());

        var type = stanza.Type();
        if (stanza.IsIq() && (type is not ("get" or "set" or "result" or "error") || stanza.Id() is null))
        {
            // RFC 6120 §8.3.3.1: an unrecognized type is bad-request; only a result or error is never answered.
            if (type is not ("result" or "error")) Reply(server, session, stanza, StanzaError.BadRequest, "an IQ needs an id and a type of get, set, result or error");
            return ValueTask.CompletedTask;
        }
        if (stanza.IsPresence() && type is not null && Array.IndexOf(PresenceTypes, type) < 0)
        {
            Reply(server, session, stanza, StanzaError.BadRequest, $"unknown presence type '{type}'");
            return ValueTask.CompletedTask;
        }

        Jid? to = null;
        var toText = stanza.GetAttribute("to");
        if (toText is not null)
        {
            // A client mostly writes to the address it wrote to last: that one is parsed once.
            if (session.LastTo is { } last && last.ToString() == toText) to = last;
            else if (Jid.TryParse(toText, out to)) session.LastTo = to;
            else
            {
                Reply(server, session, stanza, StanzaError.JidMalformed, "the 'to' address is not a valid JID");
                return ValueTask.CompletedTask;
            }
            stanza.SetAttribute("to", to.ToString());
        }

        if (stanza.IsIq() && type == "set" && stanza.FirstElement is { Name: "session", Namespace: Ns.Session }
            && (to is null || to == server.Domain))
        {
            // RFC 3921 session establishment: a no-op kept for old clients (RFC 6121 Appendix E).
            session.Send(Stanza.ResultFor(stanza).SetAttribute("from", null).SetAttribute("to", session.Jid.ToString()));
            return ValueTask.CompletedTask;
        }
        ValueTask routing;
        try
        {
            routing = server.Router.RouteFromSessionAsync(session, stanza, to);
        }
        catch (System.Data.Common.DbException e) when (e.IsTransient)
        {
            StorageBusy(server, session, stanza);
            return ValueTask.CompletedTask;
        }
        return routing.IsCompletedSuccessfully ? routing : AwaitRoutingAsync(server, session, stanza, routing);
    }

    private static async ValueTask AwaitRoutingAsync(XmppServer server, Session session, Element stanza, ValueTask routing)
    {
        try
        {
            await routing;
        }
        catch (System.Data.Common.DbException e) when (e.IsTransient)
        {
            StorageBusy(server, session, stanza);
        }
    }

    // The database did not answer in time (its pool ran dry in a login storm): this stanza fails, the session goes on.
    private static void StorageBusy(XmppServer server, Session session, Element stanza) =>
        Reply(server, session, stanza, StanzaError.InternalServerError, "The server's storage is busy; try again later.");

    private static void Reply(XmppServer server, Session session, Element stanza, StanzaError error, string text)
    {
        if (stanza.Type() == "error") return;
        server.Metrics.StanzaError(error.Condition);
        var reply = Stanza.ErrorFor(stanza, error, text);
        reply.SetAttribute("from", null).SetAttribute("to", session.Jid.ToString());
        session.Send(reply);
    }
}
