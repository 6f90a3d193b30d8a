using System.Collections.Concurrent;
using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xmpp;

namespace Candor.Server.Modules.Blocking;

/// <summary>
/// Every account's blocked JIDs (XEP-0191), stored in a map store and kept in memory while the account has a
/// session (in a cluster, on any node: a change through another node drops the copy), so checking a stanza on the
/// routing path reads no storage. Accounts without a session get messages too (offline storage): the lists of up to
/// <see cref="OfflineCapacity"/> of them are kept as well, so that a stream of messages to one does not read its
/// list for each. Each list is an immutable set replaced on change: lookups take no lock.
/// </summary>
internal sealed class Blocklists(XmppServer server, IMapStore store)
{
    public const string CacheName = "blocklist";
    public const int OfflineCapacity = 4096;
    private static readonly HashSet<string> Empty = [];
    private readonly ConcurrentDictionary<string, HashSet<string>> _online = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, HashSet<string>> _offline = new(StringComparer.Ordinal);
    private int _offlineCount;
    // Bumped by every change and drop: a list read from storage before one is not kept.
    private int _changes;

    public ValueTask<HashSet<string>> GetAsync(string user) => TryGetCached(user, out var cached) ? new(cached) : ReadAsync(user);

    /// <summary>The list when it is in memory (no storage read).</summary>
    public bool TryGetCached(string user, out HashSet<string> list) =>
        _online.TryGetValue(user, out list!) || _offline.TryGetValue(user, out list!);

    private async ValueTask<HashSet<string>> ReadAsync(string user)
    {
        var changes = Volatile.Read(ref _changes);
        var stored = await store.GetAllAsync(user);
        var list = stored.Count == 0 ? Empty : new HashSet<string>(stored.Keys, StringComparer.Ordinal);
        if (Online(user)) _online.TryAdd(user, list);
        else KeepOffline(user, list, changes);
        return list;
    }

    private void KeepOffline(string user, HashSet<string> list, int changes)
    {
        if (Interlocked.Increment(ref _offlineCount) > OfflineCapacity)
        {
            // Full: start again rather than track which entry is oldest (a miss costs one storage read).
            _offline.Clear();
            Interlocked.Exchange(ref _offlineCount, 1);
        }
        _offline[user] = list;
        // A change or drop raced with the read: the list may be stale, so it is not kept.
        if (Volatile.Read(ref _changes) != changes) _offline.TryRemove(user, out _);
    }

    private void Changed(string user)
    {
        Interlocked.Increment(ref _changes);
        _offline.TryRemove(user, out _);
    }

    /// <summary>Keeps the list in memory for the account's sessions.</summary>
    public async ValueTask LoadAsync(string user)
    {
        // Read again rather than taken from the offline copies: that one may be older than the account (removed and made again).
        _offline.TryRemove(user, out _);
        _online[user] = await GetAsync(user);
    }

    private bool Online(string user) => server.Sessions.Get(user).Count > 0;

    /// <summary>Another node changed the list: it is read again when next needed.</summary>
    public void Drop(string user)
    {
        Changed(user);
        _online.TryRemove(user, out _);
    }

    /// <summary>Forgets the list once the account has no session left.</summary>
    public void Unload(string user)
    {
        if (!Online(user)) _online.TryRemove(user, out _);
    }

    /// <summary>Adds (or with <paramref name="add"/> false removes; no JIDs and false: removes all) and returns the new list.</summary>
    public async Task<HashSet<string>> ChangeAsync(string user, IReadOnlyList<string> jids, bool add)
    {
        var list = new HashSet<string>(await GetAsync(user), StringComparer.Ordinal);
        if (!add && jids.Count == 0)
        {
            foreach (var jid in list) await store.SetAsync(user, jid, null);
            list.Clear();
        }
        foreach (var jid in jids)
        {
            await store.SetAsync(user, jid, add ? "1" : null);
            if (add) list.Add(jid);
            else list.Remove(jid);
        }
        server.Caches.Wrote(CacheName, user);
        Changed(user);
        if (Online(user)) _online[user] = list;
        return list;
    }

    /// <summary>Whether an item of the list matches <paramref name="jid"/>, in the XEP's order (§3.4): full, bare, domain/resource, domain.</summary>
    public static bool Matches(HashSet<string> list, Jid jid)
    {
        if (list.Count == 0) return false;
        if (list.Contains(jid.ToString()) || list.Contains(jid.Bare.ToString()) || list.Contains(jid.Domain)) return true;
        return jid.Local is not null && jid.Resource is not null && list.Contains(jid.Domain + "/" + jid.Resource);
    }
}
