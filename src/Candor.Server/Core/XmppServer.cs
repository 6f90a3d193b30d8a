using System.Collections.Concurrent;
using Candor.Server.Accounts;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Core;

/// <summary>
/// The server's shared state and extension points: what modules register with and what sessions route
/// through. One instance per running server; nothing here is static, so tests can run several servers.
/// </summary>
public sealed class XmppServer
{
    public XmppServer(ServerOptions options, IStorage storage, ILoggerFactory loggerFactory)
    {
        Options = options;
        Domain = Jid.Parse(options.Domain);
        Storage = storage;
        Accounts = new AccountStore(storage, options.ScramIterations);
        LoggerFactory = loggerFactory;
        Router = new Router(this);
        OutboundIq = new OutboundIq(Domain);
        Xml = new XmlLimits
        {
            MaxStanzaBytes = options.MaxStanzaBytes,
            MaxDepth = options.MaxXmlDepth,
            MaxAttributes = options.MaxXmlAttributes,
            MaxAttributeBytes = options.MaxXmlAttributeBytes,
            MaxNameBytes = options.MaxXmlNameBytes,
            MaxHeaderBytes = options.MaxStreamHeaderBytes,
        };
        AuthThrottle = new AuthThrottle(TimeProvider.System, options.AuthFailuresBeforeDelay,
            TimeSpan.FromSeconds(options.AuthMaxDelaySeconds), TimeSpan.FromMinutes(options.AuthFailureMemoryMinutes));
        ConnectionLimits = new Connections.ConnectionLimits(options);
        Metrics = new ServerMetrics(Version, scope: options);
    }

    public ServerOptions Options { get; }
    public Jid Domain { get; }
    public IStorage Storage { get; }
    public AccountStore Accounts { get; }
    public AuthThrottle AuthThrottle { get; }
    public ILoggerFactory LoggerFactory { get; }
    public SessionManager Sessions { get; } = new();
    public Router Router { get; }
    /// <summary>IQ requests the server sends to sessions (client software version), awaiting their answers.</summary>
    public OutboundIq OutboundIq { get; }
    public XmlLimits Xml { get; }
    public Connections.ConnectionLimits ConnectionLimits { get; }
    public ServerMetrics Metrics { get; }
    /// <summary>The operator log (promise 6), set by the host before the modules register.</summary>
    public Audit.AuditLog Audit { get; set; } = null!;
    public ServerHooks Hooks { get; } = new();
    public IqHandlers Iq { get; } = new();
    public DiscoRegistry Disco { get; } = new();
    /// <summary>Services with a domain of their own (MUC at conference.DOMAIN): the router hands them every stanza for that domain.</summary>
    public Dictionary<string, Func<StanzaEvent, ValueTask>> Components { get; } = new(StringComparer.Ordinal);
    /// <summary>Federation, when the s2s port is enabled: the router hands it stanzas for other domains.</summary>
    public Federation.S2sService? S2s { get; set; }
    /// <summary>This node of a cluster, when ClusterPort is set; null for a single process.</summary>
    public Cluster.ClusterNode? Cluster { get; set; }
    public AccountCaches Caches { get; } = new();
    public StreamFeatureRegistry StreamFeatures { get; } = new();
    /// <summary>IQs answered before authentication (in-band registration), by payload namespace.</summary>
    public Dictionary<string, Func<Element, ISessionTransport, ValueTask<Element>>> UnauthenticatedIq { get; } = [];
    /// <summary>Set by the roster module; presence and other modules read rosters through it.</summary>
    public Modules.Roster.RosterManager Rosters { get; set; } = null!;
    /// <summary>Set by the clients module: every client that accessed an account.</summary>
    public Modules.Clients.ClientRegistry Clients { get; set; } = null!;
    /// <summary>Set by the stream management module: sessions that can be resumed (XEP-0198).</summary>
    public Modules.StreamManagement.SmRegistry StreamManagement { get; set; } = null!;
    /// <summary>Set by the FAST module: XEP-0484 tokens; null without it, and then no token is offered.</summary>
    public Modules.Fast.FastTokens? FastTokens { get; set; }
    /// <summary>Set by the policy module: the content policy in force, reloadable.</summary>
    public Modules.Policy.PolicyService Policy { get; set; } = null!;
    /// <summary>Set by the upload module when UploadDomain is on: the stored files and open slots.</summary>
    public Modules.Upload.UploadService? Uploads { get; set; }
    /// <summary>Set by the archive module: <c>Archive.WhenWritten()</c> completes once every message archived so far is durable.</summary>
    public Modules.Archive.ArchiveWriter? Archive { get; set; }
    public string Version { get; } = typeof(XmppServer).Assembly.GetName().Version?.ToString(3) ?? "0.1.0";

    /// <summary>Every open stream, authenticated or not, so that shutdown can close each with a stream error.</summary>
    public ConcurrentDictionary<ISessionTransport, byte> Streams { get; } = new();

    public void CloseAllStreams(string condition, string text)
    {
        foreach (var stream in Streams.Keys) stream.Close(condition, text);
    }

    /// <summary>Ends the account's sessions, all but <paramref name="except"/>, with a stream error; returns how many.</summary>
    public int EndSessions(string user, string condition, string text, Session? except = null)
    {
        var ended = 0;
        foreach (var session in Sessions.Get(user))
        {
            if (session == except) continue;
            session.Close(condition, text);
            ended++;
        }
        return ended;
    }

    /// <summary>Sends a stanza originating from the server itself (pushes, notices).</summary>
    public ValueTask SendAsync(Element stanza)
    {
        var to = Jid.Parse(stanza.GetAttribute("to")!);
        stanza.SetAttribute("from", stanza.GetAttribute("from") ?? Domain.ToString());
        return Router.DeliverAsync(stanza, Jid.Parse(stanza.GetAttribute("from")!), to);
    }
}

/// <summary>The events modules hook into. Names follow the route: kind, then where it is addressed.</summary>
public sealed class ServerHooks
{
    /// <summary>A stanza from a local session, before routing (filters, outbound presence processing).</summary>
    public Hook<StanzaEvent> PreMessage { get; } = new();
    public Hook<StanzaEvent> PrePresence { get; } = new();
    public Hook<StanzaEvent> PreIq { get; } = new();

    public Hook<StanzaEvent> MessageToBare { get; } = new();
    public Hook<StanzaEvent> MessageToFull { get; } = new();
    public Hook<StanzaEvent> MessageToHost { get; } = new();
    public Hook<StanzaEvent> PresenceToBare { get; } = new();
    public Hook<StanzaEvent> PresenceToFull { get; } = new();
    public Hook<StanzaEvent> PresenceToHost { get; } = new();
    /// <summary>Presence without 'to' from a local session: initial, updated or unavailable presence.</summary>
    public Hook<StanzaEvent> PresenceBroadcast { get; } = new();

    /// <summary>A message for an account none of whose resources can take it now (offline storage).</summary>
    public Hook<StanzaEvent> MessageOffline { get; } = new();

    /// <summary>A resource was bound.</summary>
    public Hook<Session> SessionStarted { get; } = new();
    /// <summary>A session sent its initial available presence.</summary>
    public Hook<Session> SessionAvailable { get; } = new();
    /// <summary>A session ended, for whatever reason; runs after it was unbound.</summary>
    public Hook<Session> SessionEnded { get; } = new();

    /// <summary>A session's entity capabilities (XEP-0115) became known or changed: <see cref="Session.Caps"/>.</summary>
    public Hook<Session> CapsKnown { get; } = new();

    /// <summary>An account's password was changed: in band by <see cref="PasswordChange.By"/>, or by the operator when that is null
    /// (then <see cref="PasswordChange.LogIndex"/> is the operator log entry recording it).</summary>
    public Hook<PasswordChange> PasswordChanged { get; } = new();

    /// <summary>The server is stopping: its streams are closed and its storage still open (write out what is buffered).</summary>
    public Hook<XmppServer> Stopping { get; } = new();
}

public sealed record PasswordChange(string User, Session? By, long? LogIndex = null);

public sealed class IqHandlers
{
    private readonly Dictionary<(IqScope, bool IsSet, string Ns, string Name), IqHandler> _handlers = [];

    /// <summary>Registers the handler for IQs of that type whose payload is the element <paramref name="name"/> in <paramref name="ns"/>.</summary>
    public void Register(IqScope scope, string type, string name, string ns, IqHandler handler)
    {
        if (type is not ("get" or "set")) throw new ArgumentException("type must be get or set", nameof(type));
        _handlers.Add((scope, type == "set", ns, name), handler);
    }

    public IqHandler? Find(IqScope scope, bool isSet, Element payload) =>
        _handlers.GetValueOrDefault((scope, isSet, payload.Namespace, payload.Name));
}

/// <summary>What service discovery (XEP-0030) says about the server and about accounts.</summary>
public sealed class DiscoRegistry
{
    public SortedSet<string> ServerFeatures { get; } = new(StringComparer.Ordinal);
    public SortedSet<string> AccountFeatures { get; } = new(StringComparer.Ordinal);
    public List<(string Category, string Type, string? Name)> ServerIdentities { get; } = [];
    public List<(string Category, string Type, string? Name)> AccountIdentities { get; } = [];
    /// <summary>disco#info of an account with a node (PEP nodes); null answers item-not-found.</summary>
    public Func<IqRequest, ValueTask<Element?>>? AccountNodeInfo { get; set; }
    /// <summary>The items of an account's disco#items without a node (its PEP nodes the requester may see).</summary>
    public Func<IqRequest, ValueTask<IReadOnlyList<Element>>>? AccountItems { get; set; }
    /// <summary>XEP-0128 extended information forms the server adds to its disco#info.</summary>
    public List<Func<Element>> ServerExtensions { get; } = [];
    /// <summary>What the server's disco#items lists without a node: its components' domains.</summary>
    public List<(Jid Jid, string Name)> ServerItems { get; } = [];
    /// <summary>disco#items answers of the server for named nodes.</summary>
    public Dictionary<string, Func<IqRequest, Element>> ServerItemNodes { get; } = new(StringComparer.Ordinal);
    /// <summary>Ad-hoc commands (XEP-0050) the server offers, by node.</summary>
    public SortedDictionary<string, AdHocCommand> Commands { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// A one-step command on the requester's own account (the full JID of the session that runs it): executing it
/// returns a note and optionally a data form of results. Run as XEP-0050 ad-hoc commands and as plain-text
/// commands in a chat with the server. With a <paramref name="Confirmation"/> (for what cannot be undone), the
/// ad-hoc command first returns a form asking that question and runs only when it comes back with <c>confirm</c> true.
/// </summary>
public sealed record AdHocCommand(string Node, string Name, Func<Jid, ValueTask<AdHocResult>> Execute, string? Confirmation = null);

public sealed record AdHocResult(string Note, Element? Form = null);

/// <summary>Stream features modules add once the stream is authenticated, or before (registration).</summary>
public sealed class StreamFeatureRegistry
{
    public List<Func<Element?>> BeforeAuthentication { get; } = [];
    public List<Func<Element>> AfterAuthentication { get; } = [];
}
