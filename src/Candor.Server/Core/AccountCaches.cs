namespace Candor.Server.Core;

/// <summary>
/// What a node keeps in memory of an account's stored data (blocklist, PEP nodes, roster facts, archive
/// preferences), by name. In a cluster a change written through one node drops the copies the other nodes hold
/// (docs/CLUSTER.md, "Caches"); in a single process <see cref="Wrote"/> costs a null check.
/// </summary>
public sealed class AccountCaches
{
    private readonly Dictionary<string, Action<string>> _drops = new(StringComparer.Ordinal);

    /// <summary>Set by the cluster node: tells the other nodes (cache name, account).</summary>
    public Action<string, string>? Changed { get; set; }

    /// <summary>At registration: how to drop the account's copy held in cache <paramref name="name"/>.</summary>
    public void Register(string name, Action<string> drop) =>
        _drops[name] = _drops.TryGetValue(name, out var others) ? others + drop : drop;

    /// <summary>This node wrote a change of the account's data kept in cache <paramref name="name"/>.</summary>
    public void Wrote(string name, string user) => Changed?.Invoke(name, user);

    /// <summary>The account's last session in the cluster ended on another node: no cache keeps it here.</summary>
    public void Forget(string user)
    {
        foreach (var drop in _drops.Values) drop(user);
    }

    /// <summary>Another node wrote such a change: the copy here goes, and is read again when next needed.</summary>
    public void Drop(string name, string user)
    {
        if (_drops.TryGetValue(name, out var drop)) drop(user);
    }
}
