using System.Collections.Concurrent;
using Candor.Server.Core;
using Candor.Xml;

namespace Candor.Server.Modules.StreamManagement;

/// <summary>
/// Stream Management (XEP-0198): acknowledgements both ways and resumption of a session whose connection vanished.
/// The stream code (C2sStream, every transport) handles the &lt;enable/&gt;, &lt;r/&gt;, &lt;a/&gt; and &lt;resume/&gt;
/// elements through <see cref="SmSession"/>; this module offers the feature and keeps the resumable sessions.
/// </summary>
public sealed class StreamManagementModule : IModule
{
    public const string Namespace = "urn:xmpp:sm:3";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0198", "1.6.3", "acks both ways (the server asks after 5 stanzas or 5 s), resumption for SmResumeTimeoutSeconds with a bounded queue; unacknowledged messages rerouted or stored offline, never dropped, also on a clean shutdown; an ack waits until the messages it counts are durable in the archive; resumption also inline in SASL2"),
    ];

    public void Register(XmppServer server)
    {
        var registry = new SmRegistry(server);
        server.StreamManagement = registry;
        // A clean shutdown ends the sessions still waiting to be resumed, so what their clients did not acknowledge
        // goes to offline storage rather than away with the process; first, while the storage and archive still write.
        server.Hooks.Stopping.Add(async _ =>
        {
            await registry.EndAllAsync();
            return false;
        }, Priority.Filter);
        server.StreamFeatures.AfterAuthentication.Add(() => new Element("sm", Namespace));
    }
}

/// <summary>The resumable sessions of this server, by resumption id.</summary>
public sealed class SmRegistry(XmppServer server)
{
    private readonly ConcurrentDictionary<string, SmSession> _resumable = new(StringComparer.Ordinal);

    public XmppServer Server { get; } = server;

    public SmSession Enable(Session session, ISmConnection connection, bool resumable)
    {
        var sm = new SmSession(this, session, connection, resumable);
        if (sm.Id is not null) _resumable[sm.Id] = sm;
        return sm;
    }

    /// <summary>The resumable session with that id, if it belongs to <paramref name="user"/>.</summary>
    public SmSession? Find(string id, string user) =>
        _resumable.TryGetValue(id, out var sm) && sm.Session.User == user ? sm : null;

    internal void Forget(SmSession sm)
    {
        if (sm.Id is not null) _resumable.TryRemove(new KeyValuePair<string, SmSession>(sm.Id, sm));
    }

    public int Count => _resumable.Count;

    internal async Task EndAllAsync()
    {
        foreach (var sm in _resumable.Values) await sm.EndAsync();
    }
}
