using System.Collections.Concurrent;
using Candor.Xmpp;

namespace Candor.Server.Core;

/// <summary>
/// The sessions bound on this server, by account, and in a cluster those of the other nodes (<see cref="Session.Node"/>). Each account's list is an immutable array replaced on
/// change, so lookups on the routing path take no lock.
/// </summary>
public sealed class SessionManager
{
    private readonly ConcurrentDictionary<string, Session[]> _byUser = new(StringComparer.Ordinal);
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public IReadOnlyList<Session> Get(string user) => _byUser.TryGetValue(user, out var sessions) ? sessions : [];

    public Session? Get(Jid fullJid)
    {
        if (fullJid.Local is null || fullJid.Resource is null) return null;
        foreach (var session in Get(fullJid.Local))
            if (session.Jid.Resource == fullJid.Resource) return session;
        return null;
    }

    /// <summary>Whether the account has a session on this node: per-account data is kept in memory only then.</summary>
    public bool HasLocal(string user)
    {
        foreach (var session in Get(user))
            if (session.Node is null) return true;
        return false;
    }

    public IEnumerable<Session> All => _byUser.Values.SelectMany(s => s);

    /// <summary>
    /// Adds the session, replacing one bound to the same resource (returned in <paramref name="replaced"/>);
    /// false, and nothing changed, when the account already has <paramref name="limit"/> other resources.
    /// </summary>
    public bool TryAdd(Session session, int limit, out Session? replaced)
    {
        Session? displaced = null;
        var full = false;
        _byUser.AddOrUpdate(session.User,
            _ => [session],
            (_, existing) =>
            {
                displaced = existing.FirstOrDefault(s => s.Jid.Resource == session.Jid.Resource);
                full = displaced is null && existing.Length >= limit;
                return full ? existing : [.. existing.Where(s => s != displaced), session];
            });
        replaced = displaced;
        if (full) return false;
        if (displaced is null) Interlocked.Increment(ref _count);
        return true;
    }

    /// <summary>Adds a session another cluster node holds (replacing its earlier copy); it does not count in <see cref="Count"/>.</summary>
    public void AddRemote(Session session) =>
        _byUser.AddOrUpdate(session.User, _ => [session],
            (_, existing) => [.. existing.Where(s => s.Node is null || s.Jid.Resource != session.Jid.Resource), session]);

    /// <summary>Removes the session; false when it was not (or no longer) bound.</summary>
    public bool Remove(Session session)
    {
        while (_byUser.TryGetValue(session.User, out var existing))
        {
            if (Array.IndexOf(existing, session) < 0) return false;
            var updated = existing.Where(s => s != session).ToArray();
            var done = updated.Length == 0
                ? _byUser.TryRemove(new KeyValuePair<string, Session[]>(session.User, existing))
                : _byUser.TryUpdate(session.User, updated, existing);
            if (done)
            {
                if (session.Node is null) Interlocked.Decrement(ref _count);
                return true;
            }
        }
        return false;
    }
}
