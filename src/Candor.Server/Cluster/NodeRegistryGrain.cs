using Orleans.Runtime;

namespace Candor.Server.Cluster;

/// <summary>
/// The list of nodes and their inboxes. Held in memory only: when the silo holding it dies, the grain is
/// activated again elsewhere and refilled by the nodes' next rejoin, a few seconds later.
/// </summary>
public sealed class NodeRegistryGrain(IClusterMembershipService membership) : Grain, INodeRegistryGrain
{
    private readonly Dictionary<string, NodeEntry> _nodes = new(StringComparer.Ordinal);

    public Task<NodeEntry[]> JoinAsync(NodeEntry node)
    {
        _nodes[node.Node] = node;
        // A node membership has declared dead never comes back (a restarted process is a new silo generation).
        foreach (var member in membership.CurrentSnapshot.Members.Values)
            if (member.Status == SiloStatus.Dead) _nodes.Remove(ClusterNode.NodeId(member.SiloAddress));
        return Task.FromResult(_nodes.Values.ToArray());
    }
}
