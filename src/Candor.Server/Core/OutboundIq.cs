using System.Collections.Concurrent;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Core;

/// <summary>
/// IQ requests the server itself sends to a local session or another domain, and their answers: a result or error
/// from the addressed JID with the request's id completes it (the router hands over every result and error addressed
/// to the server or an account).
/// </summary>
public sealed class OutboundIq(Jid domain)
{
    private readonly ConcurrentDictionary<(Jid From, string Id), TaskCompletionSource<Element>> _pending = new();

    /// <summary>Sends an IQ get carrying <paramref name="payload"/>; the answer (result or error), or null when none came within <paramref name="timeout"/>.</summary>
    public Task<Element?> GetAsync(Session session, Element payload, TimeSpan timeout) =>
        AskAsync(session.Jid, payload, timeout, iq =>
        {
            session.Send(iq);
            return ValueTask.CompletedTask;
        });

    /// <summary>The same for another domain's entity (a remote server, over federation), sent through the router.</summary>
    public Task<Element?> GetAsync(Router router, Jid to, Element payload, TimeSpan timeout) =>
        AskAsync(to, payload, timeout, iq => router.DeliverAsync(iq, domain, to));

    private async Task<Element?> AskAsync(Jid to, Element payload, TimeSpan timeout, Func<Element, ValueTask> send)
    {
        var id = "candor-" + Guid.NewGuid().ToString("N")[..16];
        var key = (to, id);
        var answer = new TaskCompletionSource<Element>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[key] = answer;
        try
        {
            await send(new Element("iq", Ns.Client)
                .SetAttribute("type", "get").SetAttribute("id", id)
                .SetAttribute("from", domain.ToString()).SetAttribute("to", to.ToString())
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

    /// <summary>A result or error a local session or a remote server sent: true when it answers one of the server's requests.</summary>
    public bool TryComplete(Jid from, Element stanza) =>
        stanza.Id() is { } id && _pending.TryRemove((from, id), out var answer) && answer.TrySetResult(stanza);
}
