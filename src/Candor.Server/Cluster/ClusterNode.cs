using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Net;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Candor.Server.Cluster;

/// <summary>
/// This process as one node of a Candor cluster (docs/CLUSTER.md). Every node keeps, beside its own sessions, a
/// replica of the other nodes' sessions as <see cref="Session"/> objects whose transport forwards to the node that
/// holds the connection (<see cref="RemoteSessionTransport"/>); routing, presence, carbons, roster pushes, login
/// notices and operator actions work on them unchanged, and a stanza for a remote resource goes to its node in one
/// hop. Nodes tell each other of their sessions through their inboxes (Orleans object references), in order;
/// Orleans membership, in the shared PostgreSQL database, says which nodes are alive.
/// </summary>
public sealed partial class ClusterNode : INodeInbox
{
    public static readonly TimeSpan RejoinInterval = TimeSpan.FromSeconds(2);

    private readonly XmppServer _server;
    private readonly IGrainFactory _grains;
    private readonly IClusterMembershipService _membership;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, RemoteNode> _nodes = new(StringComparer.Ordinal);
    // The state last told to the other nodes, per local session; a change of it is published after each stanza.
    private readonly ConcurrentDictionary<Session, Published> _published = new();
    // Per local session, completes once every node has its last published state.
    private readonly ConcurrentDictionary<Session, Task> _settled = new();
    // Orders publications against linking a new node, which sends it a snapshot of the local sessions.
    private readonly Lock _publish = new();
    private NodeEntry _self = null!;

    private sealed record Published(bool Available, int Priority, Element? Presence, bool Interested, bool Carbons, bool Blocklist, ClientCaps? Caps);

    private ClusterNode(XmppServer server, IServiceProvider services)
    {
        _server = server;
        _grains = services.GetRequiredService<IGrainFactory>();
        _membership = services.GetRequiredService<IClusterMembershipService>();
        _log = server.LoggerFactory.CreateLogger<ClusterNode>();
        Id = NodeId(services.GetRequiredService<ILocalSiloDetails>().SiloAddress);
    }

    internal SessionManager Sessions => _server.Sessions;
    internal AccountCaches Caches => _server.Caches;

    /// <summary>This node's name in the cluster: its silo address (IP, port and generation).</summary>
    public string Id { get; }

    public static string NodeId(SiloAddress silo) => silo.ToParsableString();

    /// <summary>Joins the cluster once the silo runs: links to the nodes already there, then keeps the links and replica current.</summary>
    public static async Task<ClusterNode> StartAsync(XmppServer server, IServiceProvider services, CancellationToken stopping)
    {
        var node = new ClusterNode(server, services);
        // The object reference holds the node weakly; the server holds it strongly.
        node._self = new NodeEntry(node.Id, node._grains.CreateObjectReference<INodeInbox>(node));
        server.Cluster = node;
        server.Caches.Changed = node.CacheChanged;
        server.Hooks.SessionStarted.Add(session =>
        {
            session.StateChanged = node.SessionMayHaveChanged;
            node.Publish(session);
            return ValueTask.FromResult(false);
        });
        server.Hooks.SessionEnded.Add(session =>
        {
            node.Unpublish(session);
            return ValueTask.FromResult(false);
        });
        await node.RejoinAsync();
        _ = node.RejoinWhileRunningAsync(stopping);
        _ = node.WatchMembershipAsync(stopping);
        return node;
    }

    /// <summary>The nodes this one is linked to, for status output.</summary>
    public IReadOnlyCollection<string> Peers => [.. _nodes.Values.Where(n => !n.Failed).Select(n => n.Id)];

    // ---- local sessions, as the other nodes see them ----

    /// <summary>Tells the other nodes when a local session's presence, priority or flags changed.</summary>
    public void SessionMayHaveChanged(Session session)
    {
        if (session.Node is not null || !_published.TryGetValue(session, out var last) || last == Snapshot(session)) return;
        Publish(session);
    }

    /// <summary>
    /// Completes once every node knows the session's current state (or after a few seconds at most): what a client is
    /// told next (an IQ result, its own presence) may make it act on that state through another node at once.
    /// </summary>
    public async ValueTask SettledAsync(Session session)
    {
        if (session.Node is not null || !_settled.TryGetValue(session, out var settled) || settled.IsCompleted) return;
        try
        {
            await settled.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
            // A node that does not answer within seconds is failing; membership will deal with it.
        }
    }

    private static Published Snapshot(Session s) =>
        new(s.IsAvailable, s.Priority, s.Presence, s.IsInterested, s.Carbons, s.BlocklistRequested, s.Caps);

    private void Publish(Session session)
    {
        if (session.Node is not null || session.IsClosed) return;
        lock (_publish)
        {
            _published[session] = Snapshot(session);
            var up = SessionUp(session);
            _settled[session] = Task.WhenAll(_nodes.Values.Select(node => node.EnqueueTracked(up)));
        }
    }

    private void Unpublish(Session session)
    {
        if (session.Node is not null) return;
        lock (_publish)
        {
            _settled.TryRemove(session, out _);
            if (!_published.TryRemove(session, out _)) return;
            var down = new NodeMessage(NodeMessageKind.SessionDown, session.Jid.ToString());
            foreach (var node in _nodes.Values) node.Enqueue(down);
        }
    }

    /// <summary>Set by the host: re-reads this node's policy file (and logs it), as a reload on another node asks.</summary>
    public Action? ReloadPolicyHere { get; set; }

    /// <summary>The operator reloaded the policy here: every other node re-reads its own policy file.</summary>
    public void PolicyReloaded()
    {
        var reload = new NodeMessage(NodeMessageKind.ReloadPolicy, Id);
        foreach (var node in _nodes.Values) node.Enqueue(reload);
    }

    private void CacheChanged(string cache, string user)
    {
        var invalidate = new NodeMessage(NodeMessageKind.Invalidate, user, Text: cache);
        foreach (var node in _nodes.Values) node.Enqueue(invalidate);
    }

    private static NodeMessage SessionUp(Session s)
    {
        var agent = s.UserAgent;
        var info = new SessionInfo(s.Jid.ToString(), s.Mechanism, agent?.Id, agent?.Software, agent?.Device,
            s.Transport.RemoteAddress.ToString(), s.Transport.TlsProtocol, s.IsAvailable, s.Priority,
            s.Presence is { } p ? ElementWriter.ToUtf8(p) : null, s.IsInterested, s.Carbons, s.BlocklistRequested,
            s.Caps?.Ver, s.Caps is { } caps ? [.. caps.Features] : null, s.Caps?.Name, s.Transport.TransportName);
        return new NodeMessage(NodeMessageKind.SessionUp, info.Jid, Session: info);
    }

    // ---- links to the other nodes ----

    /// <summary>The link to <paramref name="entry"/>, made if there is none or the last one failed; a new link (or
    /// <paramref name="resend"/>) starts with a snapshot of the local sessions.</summary>
    private RemoteNode Link(NodeEntry entry, bool resend)
    {
        lock (_publish)
        {
            if (!_nodes.TryGetValue(entry.Node, out var node) || node.Failed)
            {
                node = new RemoteNode(this, entry.Node, entry.Inbox);
                _nodes[entry.Node] = node;
                Log.Linked(_log, entry.Node);
            }
            else if (!resend) return node;
            foreach (var session in _published.Keys) node.Enqueue(SessionUp(session));
            return node;
        }
    }

    private async Task RejoinAsync()
    {
        var registry = _grains.GetGrain<INodeRegistryGrain>(0);
        foreach (var entry in await registry.JoinAsync(_self))
        {
            if (entry.Node == Id || (_nodes.TryGetValue(entry.Node, out var known) && !known.Failed)) continue;
            Link(entry, resend: false);
            try
            {
                await entry.Inbox.HelloAsync(_self);
            }
            catch (Exception e)
            {
                Log.HelloFailed(_log, e, entry.Node);
            }
        }
    }

    private async Task RejoinWhileRunningAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(RejoinInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    await RejoinAsync();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Log.RejoinFailed(_log, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public Task HelloAsync(NodeEntry node)
    {
        Link(node, resend: true);
        return Task.CompletedTask;
    }

    // ---- what the other nodes send ----

    public async Task ReceiveAsync(string from, NodeMessage[] batch)
    {
        if (!_nodes.TryGetValue(from, out var node) || node.Failed)
        {
            // A node this one has not linked to yet (its rejoin is on its way): the sessions wait for the link's snapshot.
            foreach (var message in batch)
                if (message.Kind is not (NodeMessageKind.SessionUp or NodeMessageKind.SessionDown)) await HandleAsync(null, message);
            return;
        }
        foreach (var message in batch) await HandleAsync(node, message);
    }

    private async ValueTask HandleAsync(RemoteNode? from, NodeMessage message)
    {
        switch (message.Kind)
        {
            case NodeMessageKind.Deliver:
                if (LocalSession(message.Jid) is { } target) target.Send(Parse(message.Stanza!));
                else await RerouteAsync(message.Jid, message.Stanza!);
                break;
            case NodeMessageKind.Close:
                LocalSession(message.Jid)?.Close(message.Condition, message.Text);
                break;
            case NodeMessageKind.Invalidate:
                _server.Caches.Drop(message.Text!, message.Jid);
                break;
            case NodeMessageKind.ReloadPolicy when ReloadPolicyHere is { } reload:
                // It reads a file and writes the operator log: not on the inbox's turn.
                _ = Task.Run(reload);
                break;
            case NodeMessageKind.SessionUp when from is not null:
                from.SessionUp(message.Session!);
                break;
            case NodeMessageKind.SessionDown when from is not null:
                from.SessionDown(message.Jid);
                break;
        }
    }

    private Session? LocalSession(string jid) =>
        Jid.TryParse(jid, out var full) && _server.Sessions.Get(full) is { Node: null } session ? session : null;

    /// <summary>
    /// A stanza for a resource that is gone by the time it arrives (or whose node failed) is routed again as if the
    /// resource had never been there: a chat message with a body goes to the account's other resources or offline
    /// storage (a message to the bare JID too, so another resource that had its copy already gets it twice), an IQ
    /// request to that resource is answered with an error. Carbons, presence and the rest are dropped.
    /// </summary>
    internal async ValueTask RerouteAsync(string jid, byte[] bytes)
    {
        var stanza = Parse(bytes);
        if (!Jid.TryParse(stanza.GetAttribute("from"), out var from) || !Jid.TryParse(stanza.GetAttribute("to"), out var to)) return;
        var type = stanza.Type();
        var again = stanza.IsMessage() ? type is not ("error" or "groupchat") && stanza.GetChild("body", Ns.Client) is not null
            : stanza.IsIq() && type is "get" or "set" && to.ToString() == jid;
        if (!again || to.Bare.ToString() != Jid.Parse(jid).Bare.ToString()) return;
        try
        {
            await _server.Router.DeliverAsync(stanza, from, to);
        }
        catch (Exception e)
        {
            Log.RerouteFailed(_log, e, jid);
        }
    }

    private static Element Parse(byte[] bytes) => Storage.StoredStanza.Parse(bytes);

    // ---- nodes that fail or die ----

    /// <summary>A call to <paramref name="node"/> failed: its sessions leave this node's view until it is linked again.</summary>
    internal void Failed(RemoteNode node, Exception e)
    {
        Log.NodeFailed(_log, e, node.Id);
        node.Detach();
    }

    private async Task WatchMembershipAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var snapshot in _membership.MembershipUpdates.WithCancellation(stopping))
            {
                foreach (var member in snapshot.Members.Values)
                {
                    if (member.Status != SiloStatus.Dead || !_nodes.TryRemove(NodeId(member.SiloAddress), out var dead)) continue;
                    Log.NodeDied(_log, dead.Id, dead.Sessions.Count);
                    dead.Detach();
                    dead.Stop();
                    // One node speaks for the dead one's sessions (presence unavailable to their contacts, last activity):
                    // the live node with the least address.
                    var speaker = snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active)
                        .Select(m => NodeId(m.SiloAddress)).Order(StringComparer.Ordinal).FirstOrDefault();
                    if (speaker != Id) continue;
                    foreach (var session in dead.Sessions.Values)
                        await _server.Hooks.SessionEnded.FireAsync(session);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            Log.MembershipWatchFailed(_log, e);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "Cluster: linked to node {Node}")]
        public static partial void Linked(ILogger logger, string node);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster: node {Node} did not answer hello")]
        public static partial void HelloFailed(ILogger logger, Exception exception, string node);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster: rejoining the node registry failed")]
        public static partial void RejoinFailed(ILogger logger, Exception exception);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster: sending to node {Node} failed; its sessions are out of this node's view until it is linked again")]
        public static partial void NodeFailed(ILogger logger, Exception exception, string node);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster: node {Node} is dead (membership); its {Count} session(s) are gone")]
        public static partial void NodeDied(ILogger logger, string node, int count);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster: rerouting a stanza for {Jid} failed")]
        public static partial void RerouteFailed(ILogger logger, Exception exception, string jid);

        [LoggerMessage(Level = LogLevel.Error, Message = "Cluster: watching membership failed; dead nodes' sessions stay in view")]
        public static partial void MembershipWatchFailed(ILogger logger, Exception exception);
    }
}

/// <summary>Another node: the ordered queue of what this node sends it, and the replica of its sessions.</summary>
internal sealed class RemoteNode
{
    private const int MaxBatch = 256;
    private readonly ClusterNode _owner;
    private readonly INodeInbox _inbox;
    private readonly System.Threading.Channels.Channel<Outgoing> _queue =
        System.Threading.Channels.Channel.CreateUnbounded<Outgoing>(new() { SingleReader = true });

    private readonly record struct Outgoing(NodeMessage Message, TaskCompletionSource? Sent);
    private volatile bool _failed;

    public RemoteNode(ClusterNode owner, string id, INodeInbox inbox)
    {
        _owner = owner;
        _inbox = inbox;
        Id = id;
        _ = PumpAsync();
    }

    public string Id { get; }
    public bool Failed => _failed;
    /// <summary>The node's sessions by full JID, kept after a failure so that whoever speaks for a dead node has them.</summary>
    public ConcurrentDictionary<string, Session> Sessions { get; } = new(StringComparer.Ordinal);
    public void Enqueue(NodeMessage message)
    {
        if (_failed || !_queue.Writer.TryWrite(new(message, null))) Undeliverable(new(message, null));
    }

    /// <summary>Enqueues; the task completes when the node has received the message (or the link failed).</summary>
    public Task EnqueueTracked(NodeMessage message)
    {
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_failed || !_queue.Writer.TryWrite(new(message, sent))) Undeliverable(new(message, sent));
        return sent.Task;
    }

    private void Undeliverable(Outgoing outgoing)
    {
        outgoing.Sent?.TrySetResult();
        var message = outgoing.Message;
        if (message.Kind == NodeMessageKind.Deliver) _ = _owner.RerouteAsync(message.Jid, message.Stanza!).AsTask();
    }

    private async Task PumpAsync()
    {
        var batch = new List<Outgoing>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var message)) batch.Add(message);
            try
            {
                await _inbox.ReceiveAsync(_owner.Id, [.. batch.Select(o => o.Message)]);
                foreach (var outgoing in batch) outgoing.Sent?.TrySetResult();
            }
            catch (Exception e)
            {
                if (!_failed) _owner.Failed(this, e);
                _queue.Writer.TryComplete();
                foreach (var message in batch) Undeliverable(message);
                while (_queue.Reader.TryRead(out var message)) Undeliverable(message);
                return;
            }
        }
    }

    public void Stop() => _queue.Writer.TryComplete();

    /// <summary>Takes the node's sessions out of this node's view; from now on what is sent to them is rerouted.</summary>
    public void Detach()
    {
        _failed = true;
        foreach (var session in Sessions.Values) Remove(session);
    }

    public void SessionUp(SessionInfo info)
    {
        if (!Sessions.TryGetValue(info.Jid, out var session))
        {
            var jid = Jid.Parse(info.Jid);
            var agent = info.AgentId is null && info.AgentSoftware is null && info.AgentDevice is null
                ? null : new UserAgent(info.AgentId, info.AgentSoftware, info.AgentDevice);
            var transport = new RemoteSessionTransport(this, info.Jid, IPAddress.Parse(info.Address), info.TransportName, info.Tls);
            session = new Session(transport, jid, info.Mechanism, agent) { Node = Id };
            Sessions[info.Jid] = session;
            Apply(session, info);
            if (!_failed) _owner.Sessions.AddRemote(session);
            return;
        }
        Apply(session, info);
    }

    private static void Apply(Session session, SessionInfo info)
    {
        session.Presence = info.Presence is { } p ? Storage.StoredStanza.Parse(p) : null;
        session.Priority = info.Priority;
        session.IsInterested = info.Interested;
        session.Carbons = info.Carbons;
        session.BlocklistRequested = info.BlocklistRequested;
        session.Caps = info.CapsVer is null ? null : new ClientCaps(info.CapsVer, (info.CapsFeatures ?? []).ToFrozenSet(StringComparer.Ordinal), info.CapsName);
        session.IsAvailable = info.Available;
    }

    public void SessionDown(string jid)
    {
        if (Sessions.TryRemove(jid, out var session)) Remove(session);
    }

    private void Remove(Session session)
    {
        var manager = _owner.Sessions;
        if (manager.Remove(session) && manager.Get(session.User).Count == 0) _owner.Caches.Forget(session.User);
    }
}

/// <summary>A session on another node, as this node sees it: what is sent to it goes to that node in one hop.</summary>
internal sealed class RemoteSessionTransport(RemoteNode node, string jid, IPAddress address, string transportName, string? tls) : ISessionTransport
{
    public void Send(Element stanza) => node.Enqueue(new NodeMessage(NodeMessageKind.Deliver, jid, ElementWriter.ToUtf8(stanza)));

    public void Close(string? condition, string? text = null) =>
        node.Enqueue(new NodeMessage(NodeMessageKind.Close, jid, Condition: condition, Text: text));

    public IPAddress RemoteAddress => address;
    public string TransportName => transportName;
    public bool IsSecure => tls is not null;
    public string? TlsProtocol => tls;
}
