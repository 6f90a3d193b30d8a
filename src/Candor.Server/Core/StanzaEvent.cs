using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Core;

/// <summary>A stanza on its way through the router. <see cref="Origin"/> is the local session that sent it, if any.</summary>
public sealed class StanzaEvent(XmppServer server, Session? origin, Element stanza, Jid from, Jid to)
{
    public XmppServer Server { get; } = server;
    public Session? Origin { get; } = origin;
    public Element Stanza { get; } = stanza;
    public Jid From { get; } = from;
    public Jid To { get; } = to;
    public string? Type => Stanza.Type();
    /// <summary>The stanza-id under which the sender's own archive keeps this message, once archived (for sent carbons).</summary>
    public string? SenderArchiveId { get; set; }

    /// <summary>Sends an error reply to the sender, unless the stanza is itself an error (RFC 6120 §8.3.1).</summary>
    public ValueTask ReplyErrorAsync(StanzaError error, string? text = null, Element? appCondition = null)
    {
        if (Type == "error") return ValueTask.CompletedTask;
        Server.Metrics.StanzaError(error.Condition);
        var reply = Xmpp.Stanza.ErrorFor(Stanza, error, text, appCondition);
        reply.SetAttribute("from", To.ToString()).SetAttribute("to", From.ToString());
        return Server.Router.DeliverAsync(reply, To, From);
    }
}

/// <summary>An IQ get or set addressed to the server or to an account, handled on its behalf.</summary>
public sealed class IqRequest(StanzaEvent stanza, Element payload)
{
    public StanzaEvent Event { get; } = stanza;
    public Element Stanza => Event.Stanza;
    public Element Payload { get; } = payload;
    public Session? Origin => Event.Origin;
    public Jid From => Event.From;
    public Jid To => Event.To;
    public bool IsSet => Stanza.Type() == "set";
    /// <summary>The request comes from the account it is addressed to (or was sent without 'to').</summary>
    public bool IsSelf => To.Local is not null && From.Local == To.Local && From.Domain == To.Domain;

    public Element Result(Element? payload = null) =>
        Xmpp.Stanza.ResultFor(Stanza, payload).SetAttribute("from", To.ToString()).SetAttribute("to", From.ToString());

    public Element Error(StanzaError error, string? text = null) =>
        Xmpp.Stanza.ErrorFor(Stanza, error, text).SetAttribute("from", To.ToString()).SetAttribute("to", From.ToString());
}

/// <summary>Answers an IQ: returns the reply stanza (result or error), or null when it sent the reply itself.</summary>
public delegate ValueTask<Element?> IqHandler(IqRequest request);

public enum IqScope
{
    /// <summary>Addressed to the server's domain.</summary>
    Server,
    /// <summary>Addressed to a local account's bare JID (or sent without 'to', which means the sender's own account).</summary>
    Account,
}
