using System.Collections.Concurrent;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Core;

/// <summary>
/// IQ requests the server itself sends to a local session, and their answers: a result or error from that full
/// JID with the request's id completes it (the router hands over every result and error a session sends).
/// </summary>
public sealed class OutboundIq(Jid domain)
{
    private readonly ConcurrentDictionary<(Jid From, string Id), TaskCompletionSource<Element>> _pending = new();

    /// <summary>Sends an IQ get carrying <paramref name="payload"/>; the answer (result or error), or null when none came within <paramref name="timeout"/>.</summary>
    public async Task<Element?> GetAsync(Session session, Element payload, TimeSpan timeout)
    {
        var id = "candor-" + Guid.NewGuid().ToString("N")[..16];
        var key = (session.Jid, id);
        var answer = new TaskCompletionSource<Element>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[key] = answer;
        try
        {
            session.Send(new Element("iq", Ns.Client)
                .SetAttribute("type", "get").SetAttribute("id", id)
                .SetAttribute("from", domain.ToString()).SetAttribute("to", session.Jid.ToString())
                .Add(payload));
            return await answer.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            return null;
        }
        finally
        {
            _pending.TryRemove(key, out _);
        }
    }

    /// <summary>A result or error a local session sent: true when it answers one of the server's requests.</summary>
    public bool TryComplete(Jid from, Element stanza) =>
        stanza.Id() is { } id && _pending.TryRemove((from, id), out var answer) && answer.TrySetResult(stanza);
}
