using Candor.Server.Core;
using Candor.Server.Modules.Messages;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Offline;

/// <summary>
/// Offline messages (XEP-0160): kept for an account with no available resource, delivered in order with a
/// XEP-0203 delay stamp at its next initial presence, and removed as they are handed over, so each is
/// delivered exactly once. Over the limit the sender gets resource-constraint: nothing vanishes silently.
/// </summary>
public sealed class OfflineModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0160", "1.0.1", "offline storage, delivered on initial presence"),
        new("XEP-0203", "2.0", "delay stamps on delivered offline messages"),
    ];

    /// <summary>
    /// Storing and taking an account's messages take turns (striped, so memory stays bounded): otherwise a message
    /// routed just before the account's first session became available could be stored after that session took the
    /// queue, and wait there until the next login.
    /// </summary>
    private readonly SemaphoreSlim[] _turns = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    private SemaphoreSlim TurnOf(string user) => _turns[(int)((uint)StringComparer.Ordinal.GetHashCode(user) % (uint)_turns.Length)];

    public void Register(XmppServer server)
    {
        var store = server.Storage.OpenArchive("offline");
        server.Hooks.MessageOffline.Add(ev => StoreAsync(server, store, ev), Priority.Fallback);
        server.Hooks.SessionAvailable.Add(session => DeliverAsync(store, session), Priority.Fallback);
        server.Disco.ServerFeatures.Add(Ns.Offline);
    }

    private async ValueTask<bool> StoreAsync(XmppServer server, IArchiveStore store, StanzaEvent ev)
    {
        var user = ev.To.Local!;
        var turn = TurnOf(user);
        await turn.WaitAsync();
        try
        {
            // A session that became available since the message was routed has taken the queue already: it gets the message now.
            return MessageModule.DeliverToBest(server.Sessions.Get(user), ev.Stanza) || await StoreLockedAsync(server, store, ev, user);
        }
        finally
        {
            turn.Release();
        }
    }

    private static async ValueTask<bool> StoreLockedAsync(XmppServer server, IArchiveStore store, StanzaEvent ev, string user)
    {
        if (await store.CountAsync(user) >= server.Options.MaxOfflineMessages)
        {
            await ev.ReplyErrorAsync(StanzaError.ResourceConstraint,
                $"the recipient is offline and has {server.Options.MaxOfflineMessages} messages waiting already");
            return true;
        }
        var now = DateTimeOffset.UtcNow;
        var stored = ev.Stanza.Clone();
        stored.Add(new Element("delay", Ns.Delay)
            .SetAttribute("from", server.Domain.ToString())
            .SetAttribute("stamp", XmppTime.Format(now))
            .AddText("Offline storage"));
        await store.AppendAsync(user, now, ev.From.Bare.ToString(), ElementWriter.ToXmlString(stored));
        return true;
    }

    private async ValueTask<bool> DeliverAsync(IArchiveStore store, Session session)
    {
        if (session.Priority < 0) return false;
        var turn = TurnOf(session.User);
        await turn.WaitAsync();
        try
        {
            var messages = await store.TakeAsync(session.User, ArchiveQuery.All);
            foreach (var item in messages)
                session.Send(StoredStanza.Parse(item.Value));
        }
        finally
        {
            turn.Release();
        }
        return false;
    }
}
