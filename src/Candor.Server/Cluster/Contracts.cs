namespace Candor.Server.Cluster;

/// <summary>
/// A node's inbox, reachable from every other node in one hop: an Orleans object reference to the
/// <see cref="ClusterNode"/> of that process. Each sender calls it with batches in order and awaits each,
/// so what one node sends another arrives in the order it was sent, once.
/// </summary>
public interface INodeInbox : IGrainObserver
{
    Task ReceiveAsync(string from, NodeMessage[] batch);
    /// <summary>A node has joined: the receiver links to it and sends it its sessions.</summary>
    Task HelloAsync(NodeEntry node);
}

/// <summary>Where the nodes find each other's inboxes; every node rejoins every few seconds.</summary>
public interface INodeRegistryGrain : IGrainWithIntegerKey
{
    Task<NodeEntry[]> JoinAsync(NodeEntry node);
}

[GenerateSerializer, Immutable]
public sealed record NodeEntry([property: Id(0)] string Node, [property: Id(1)] INodeInbox Inbox);

public enum NodeMessageKind
{
    /// <summary>A stanza for the local session <see cref="NodeMessage.Jid"/>, as serialized bytes.</summary>
    Deliver,
    /// <summary>End the local session <see cref="NodeMessage.Jid"/> with a stream error.</summary>
    Close,
    /// <summary>The sender's session <see cref="NodeMessage.Session"/> was bound or changed its state.</summary>
    SessionUp,
    /// <summary>The sender's session <see cref="NodeMessage.Jid"/> ended.</summary>
    SessionDown,
    /// <summary>The sender wrote a change of account <see cref="NodeMessage.Jid"/>'s data held in cache <see cref="NodeMessage.Text"/>.</summary>
    Invalidate,
    /// <summary>The operator reloaded the policy on the sender: re-read this node's policy file.</summary>
    ReloadPolicy,
}

[GenerateSerializer, Immutable]
public sealed record NodeMessage(
    [property: Id(0)] NodeMessageKind Kind,
    [property: Id(1)] string Jid,
    [property: Id(2)] byte[]? Stanza = null,
    [property: Id(3)] string? Condition = null,
    [property: Id(4)] string? Text = null,
    [property: Id(5)] SessionInfo? Session = null);

/// <summary>What other nodes know of a session: enough for routing, presence, carbons, roster pushes and login notices.</summary>
[GenerateSerializer, Immutable]
public sealed record SessionInfo(
    [property: Id(0)] string Jid,
    [property: Id(1)] string Mechanism,
    [property: Id(2)] string? AgentId,
    [property: Id(3)] string? AgentSoftware,
    [property: Id(4)] string? AgentDevice,
    [property: Id(5)] string Address,
    [property: Id(6)] string? Tls,
    [property: Id(7)] bool Available,
    [property: Id(8)] int Priority,
    [property: Id(9)] byte[]? Presence,
    [property: Id(10)] bool Interested,
    [property: Id(11)] bool Carbons,
    [property: Id(12)] bool BlocklistRequested,
    [property: Id(13)] string? CapsVer,
    [property: Id(14)] string[]? CapsFeatures,
    [property: Id(15)] string? CapsName,
    [property: Id(16)] string TransportName);
