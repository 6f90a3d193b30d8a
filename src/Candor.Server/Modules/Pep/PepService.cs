using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Text.Json;
using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

/// <summary>
/// The PEP nodes of every account (map store "pep": account → node name → node with its items), with an
/// in-memory copy of the nodes of accounts that are online, and of who may see them (the account's contacts
/// with a presence subscription and their roster groups), so that notifying online contacts reads no storage.
/// Every change goes through here: the copy in memory is the one that is written.
/// </summary>
public sealed class PepService
{
    private readonly XmppServer _server;
    private readonly IMapStore _store;
    private readonly ConcurrentDictionary<string, PepAccount> _accounts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, FrozenDictionary<string, Subscriber>> _subscribers = new(StringComparer.Ordinal);

    public PepService(XmppServer server)
    {
        _server = server;
        _store = server.Storage.OpenMap("pep");
        Action<string> dropSubscribers = user => _subscribers.TryRemove(user, out _);
        server.Rosters.Changed += dropSubscribers;
        server.Caches.Register(Roster.RosterManager.CacheName, dropSubscribers);
        server.Caches.Register(CacheName, user => _accounts.TryRemove(user, out _));
    }

    public const string CacheName = "pep";

    public int MaxItemsPerNode => _server.Options.PepMaxItemsPerNode;

    /// <summary>The account's nodes, loaded once while the account is online.</summary>
    public async ValueTask<PepAccount> GetAsync(string user)
    {
        if (_accounts.TryGetValue(user, out var cached)) return cached;
        var stored = await _store.GetAllAsync(user);
        var nodes = new Dictionary<string, PepNode>(StringComparer.Ordinal);
        foreach (var (name, json) in stored)
            nodes[name] = JsonSerializer.Deserialize(json, PepJson.Default.PepNode)!;
        var account = new PepAccount(user, nodes);
        return _server.Sessions.HasLocal(user) ? _accounts.GetOrAdd(user, account) : account;
    }

    /// <summary>Drops the copy in memory of an account that has gone offline, unless a change is being written.</summary>
    public void Forget(string user)
    {
        if (_server.Sessions.HasLocal(user)) return;
        if (_accounts.TryGetValue(user, out var account) && !account.Writing) _accounts.TryRemove(user, out _);
        _subscribers.TryRemove(user, out _);
    }

    public async Task SaveAsync(string user, PepNode node)
    {
        if (!node.Config.PersistItems)
            node = new PepNode { Name = node.Name, Config = node.Config };
        await _store.SetAsync(user, node.Name, JsonSerializer.Serialize(node, PepJson.Default.PepNode));
        _server.Caches.Wrote(CacheName, user);
    }

    public async Task DeleteAsync(string user, string node)
    {
        await _store.SetAsync(user, node, null);
        _server.Caches.Wrote(CacheName, user);
    }

    /// <summary>The account's contacts with a subscription to its presence ('from' or 'both'), by bare JID.</summary>
    public async ValueTask<FrozenDictionary<string, Subscriber>> SubscribersAsync(string user)
    {
        if (_subscribers.TryGetValue(user, out var cached)) return cached;
        var roster = await _server.Rosters.GetAllAsync(user);
        var subscribers = roster.Where(i => i.SubscribedFrom).ToFrozenDictionary(i => i.Jid, i => new Subscriber(
            Jid.TryParse(i.Jid, out var jid) && jid.Local is not null && jid.Domain == _server.Domain.Domain ? jid.Local : null,
            [.. i.Groups]), StringComparer.Ordinal);
        if (_server.Sessions.HasLocal(user)) _subscribers[user] = subscribers;
        return subscribers;
    }

    /// <summary>Whether <paramref name="reader"/> (a bare JID) may see the node's items under its access model.</summary>
    public static Access CanRead(string owner, string domain, NodeConfig config, Jid reader, FrozenDictionary<string, Subscriber> subscribers)
    {
        if (reader.Local == owner && reader.Domain == domain) return Access.Allowed;
        var bare = reader.Bare.ToString();
        return config.Access switch
        {
            AccessModel.Open => Access.Allowed,
            AccessModel.Presence => subscribers.ContainsKey(bare) ? Access.Allowed : Access.PresenceRequired,
            AccessModel.Roster => subscribers.TryGetValue(bare, out var subscriber) && subscriber.InGroupOf(config)
                ? Access.Allowed : Access.NotInGroup,
            _ => Access.Closed,
        };
    }
}

public enum Access { Allowed, PresenceRequired, NotInGroup, Closed }

/// <summary>A contact subscribed to an account's presence: its account here (null when on another domain) and its roster groups.</summary>
public sealed record Subscriber(string? LocalUser, string[] Groups)
{
    public bool InGroupOf(NodeConfig config) => Groups.Any(g => config.RosterGroups.Contains(g));
}

/// <summary>One account's nodes. Readers lock <see cref="Nodes"/>; writers also hold <see cref="Gate"/> until stored.</summary>
public sealed class PepAccount(string user, Dictionary<string, PepNode> nodes)
{
    public string User { get; } = user;
    private SemaphoreSlim? _gate;

    public Dictionary<string, PepNode> Nodes { get; } = nodes;

    /// <summary>Made on the first change: most accounts never publish, and every online account has one of these.</summary>
    public SemaphoreSlim Gate => _gate ?? Interlocked.CompareExchange(ref _gate, new SemaphoreSlim(1, 1), null) ?? _gate;

    /// <summary>A change is being written.</summary>
    public bool Writing => _gate is { CurrentCount: 0 };

    public int Bytes
    {
        get
        {
            lock (Nodes) return Nodes.Values.Sum(n => n.Bytes);
        }
    }

    public PepNode? Find(string name)
    {
        lock (Nodes) return Nodes.GetValueOrDefault(name);
    }
}
