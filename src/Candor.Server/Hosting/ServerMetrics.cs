using System.Diagnostics;
using System.Diagnostics.Metrics;
using Candor.Server.Connections;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Hosting;

/// <summary>
/// The server's instruments (System.Diagnostics.Metrics, meter "Candor.Server"), exported at /metrics by
/// <see cref="MetricsEndpoint"/>. Stanzas are counted per thread (<see cref="StanzaCounts"/>) and summed when
/// scraped; gauges (connections, sessions, queues, stored items) are computed only when scraped.
/// Names follow the OpenTelemetry conventions (dotted, lower case, unit as metadata; error.type for the
/// condition, db.client.operation.duration for storage). No label ever carries an address, a JID or content.
/// </summary>
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "Candor.Server";
    /// <summary>The s2s authentication methods, as the candor.s2s.method attribute names them.</summary>
    public const string Dialback = "dialback", SaslExternal = "sasl_external";
    private static readonly string[] Kinds = ["message", "presence", "iq"];
    // Slots of _stanzas: one range of Kinds.Length per direction and stream type.
    private const int C2sIn = 0, C2sOut = 3, S2sIn = 6, S2sOut = 9;
    private static readonly string[] Directions = ["incoming", "outgoing"];

    private readonly Meter _meter;
    private readonly StanzaCounts _stanzas = new(12);
    private readonly long[] _s2sConnections = new long[Directions.Length];
    private readonly Counter<long> _logins;
    private readonly Counter<long> _loginFailures;
    private readonly Counter<long> _stanzaErrors;
    private readonly Counter<long> _streamErrors;
    private readonly Counter<long> _policyRefusals;
    private readonly Counter<long> _s2sAuthentications;
    private readonly Counter<long> _s2sAuthenticationFailures;
    private readonly Histogram<double> _storage;
    private XmppServer? _server;
    private Func<Task<IReadOnlyDictionary<string, long>>>? _countArchives;
    private IReadOnlyDictionary<string, long>? _archiveItems;
    private Task? _counting;
    private long _countedAt;

    /// <param name="scope">What tells this server's meter from another's in the same process (its options): the
    /// exporter of each server reads only its own (<see cref="MetricsEndpoint"/>).</param>
    public ServerMetrics(string version, object? scope = null)
    {
        _meter = new Meter(new MeterOptions(MeterName) { Version = version, Scope = scope });
        _meter.CreateObservableCounter("candor.stanzas.received", () => Observe(C2sIn), "{stanza}",
            "Stanzas received from client streams, by kind");
        _meter.CreateObservableCounter("candor.stanzas.sent", () => Observe(C2sOut), "{stanza}",
            "Stanzas queued to client streams, by kind");
        _meter.CreateObservableCounter("candor.s2s.stanzas.received", () => Observe(S2sIn), "{stanza}",
            "Stanzas received from other servers and routed, by kind");
        _meter.CreateObservableCounter("candor.s2s.stanzas.sent", () => Observe(S2sOut), "{stanza}",
            "Stanzas queued to other servers, by kind");
        _meter.CreateObservableUpDownCounter("candor.s2s.connections", ObserveS2sConnections, "{connection}",
            "Open server-to-server streams, by direction (incoming: from the listener; outgoing: authenticated streams we opened)");
        _s2sAuthentications = _meter.CreateCounter<long>("candor.s2s.authentications", "{authentication}",
            "Domains a server-to-server stream authenticated, by method (dialback, sasl_external) and direction");
        _s2sAuthenticationFailures = _meter.CreateCounter<long>("candor.s2s.authentication.failures", "{authentication}",
            "Server-to-server authentications refused, by method, direction and condition");
        _logins = _meter.CreateCounter<long>("candor.logins", "{login}", "Successful SASL authentications, by mechanism");
        _loginFailures = _meter.CreateCounter<long>("candor.login.failures", "{login}", "Failed SASL authentications, by mechanism and condition");
        _stanzaErrors = _meter.CreateCounter<long>("candor.stanza.errors", "{stanza}", "Error stanzas the server sent, by condition (RFC 6120 §8.3.3)");
        _streamErrors = _meter.CreateCounter<long>("candor.stream.errors", "{stream}", "Streams the server ended with a stream error, by condition (RFC 6120 §4.9.3)");
        _policyRefusals = _meter.CreateCounter<long>("candor.policy.refusals", "{message}", "Messages refused by the content policy, by rule id");
        _storage = _meter.CreateHistogram<double>("db.client.operation.duration", "s", "Database operations of the stores, sealing excluded",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _meter.CreateObservableUpDownCounter("candor.connections", ObserveConnections, "{connection}", "Open client streams, by transport (tcp, websocket, bosh)");
        _meter.CreateObservableUpDownCounter("candor.sessions", ObserveSessions, "{session}",
            "Sessions with a bound resource, by transport (detached: resumable, XEP-0198, without a connection)");
        _meter.CreateObservableGauge("candor.outbound_queue.length", ObserveQueues, "{stanza}",
            "Stanzas waiting in client streams' outbound queues: the longest, and the 99th percentile over streams");
        _meter.CreateObservableGauge("candor.storage.archive.items", ObserveArchives, "{item}",
            "Items in each archive-shaped store (offline messages, message archives, ...), counted at most once a minute");
    }

    /// <summary>How old the archive counts may be: counting every archived item is too much work for every scrape.</summary>
    public static readonly TimeSpan ArchiveCountInterval = TimeSpan.FromSeconds(30);

    /// <summary>Ties the gauges to the running server and to the count of its archive-shaped stores.</summary>
    public void Attach(XmppServer server, Func<Task<IReadOnlyDictionary<string, long>>> countArchives)
    {
        _server = server;
        _countArchives = countArchives;
    }

    public void Received(string kind)
    {
        if (Index(kind) is var i and >= 0) _stanzas.Increment(C2sIn + i);
    }

    public void Sent(string kind)
    {
        if (Index(kind) is var i and >= 0) _stanzas.Increment(C2sOut + i);
    }

    public void S2sReceived(string kind)
    {
        if (Index(kind) is var i and >= 0) _stanzas.Increment(S2sIn + i);
    }

    public void S2sSent(string kind)
    {
        if (Index(kind) is var i and >= 0) _stanzas.Increment(S2sOut + i);
    }

    /// <summary>An s2s stream opened (+1) or ended (-1).</summary>
    public void S2sConnection(bool incoming, int change) => Interlocked.Add(ref _s2sConnections[incoming ? 0 : 1], change);

    /// <summary>The s2s streams open now in one direction.</summary>
    public long S2sConnections(bool incoming) => Volatile.Read(ref _s2sConnections[incoming ? 0 : 1]);

    /// <summary>A domain authenticated on an s2s stream: <paramref name="method"/> is "dialback" or "sasl_external".</summary>
    public void S2sAuthenticated(string method, bool incoming) =>
        _s2sAuthentications.Add(1, new KeyValuePair<string, object?>("candor.s2s.method", method), Direction(incoming));

    public void S2sAuthenticationFailed(string method, bool incoming, string condition) =>
        _s2sAuthenticationFailures.Add(1, new KeyValuePair<string, object?>("candor.s2s.method", method), Direction(incoming),
            new KeyValuePair<string, object?>("error.type", condition));

    private static KeyValuePair<string, object?> Direction(bool incoming) => new("candor.s2s.direction", Directions[incoming ? 0 : 1]);

    public void Login(string mechanism) => _logins.Add(1, new KeyValuePair<string, object?>("candor.sasl.mechanism", mechanism));

    public void LoginFailed(string mechanism, string condition) =>
        _loginFailures.Add(1, new KeyValuePair<string, object?>("candor.sasl.mechanism", mechanism), new KeyValuePair<string, object?>("error.type", condition));

    public void StanzaError(string condition) => _stanzaErrors.Add(1, new KeyValuePair<string, object?>("error.type", condition));

    /// <summary>Counts an error reply a handler built, under the condition it carries.</summary>
    public void StanzaError(Element reply)
    {
        var condition = reply.GetChild("error", Ns.Client)?.Elements.FirstOrDefault(e => e.Namespace == Ns.Stanzas)?.Name;
        StanzaError(condition ?? "undefined-condition");
    }

    public void StreamError(string condition) => _streamErrors.Add(1, new KeyValuePair<string, object?>("error.type", condition));

    public void PolicyRefusal(string rule) => _policyRefusals.Add(1, new KeyValuePair<string, object?>("candor.policy.rule", rule));

    /// <summary>Records how long a storage operation took since <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public void StorageOperation(string system, string operation, long started) =>
        _storage.Record(Stopwatch.GetElapsedTime(started).TotalSeconds,
            new KeyValuePair<string, object?>("db.system.name", system), new KeyValuePair<string, object?>("db.operation.name", operation));

    private static int Index(string kind) => kind switch
    {
        "message" => 0,
        "presence" => 1,
        "iq" => 2,
        _ => -1,
    };

    private IEnumerable<Measurement<long>> Observe(int first)
    {
        for (var i = 0; i < Kinds.Length; i++)
            yield return new Measurement<long>(_stanzas.Read(first + i), new KeyValuePair<string, object?>("candor.stanza.kind", Kinds[i]));
    }

    private IEnumerable<Measurement<long>> ObserveS2sConnections()
    {
        for (var i = 0; i < Directions.Length; i++)
            yield return new Measurement<long>(Volatile.Read(ref _s2sConnections[i]), new KeyValuePair<string, object?>("candor.s2s.direction", Directions[i]));
    }

    private static readonly string[] Transports = ["tcp", "websocket", "bosh"];

    private IEnumerable<Measurement<long>> ObserveConnections() => CountByTransport(_ => true);

    private IEnumerable<Measurement<long>> ObserveSessions()
    {
        if (_server is null) return [];
        var attached = CountByTransport(stream => stream is C2sStream { IsBound: true }).ToList();
        var detached = _server.Sessions.Count - attached.Sum(m => m.Value);
        attached.Add(new Measurement<long>(Math.Max(0, detached), new KeyValuePair<string, object?>("candor.transport", "detached")));
        return attached;
    }

    private IEnumerable<Measurement<long>> CountByTransport(Func<ISessionTransport, bool> counted)
    {
        if (_server is null) return [];
        var counts = Transports.ToDictionary(t => t, _ => 0L);
        foreach (var stream in _server.Streams.Keys)
        {
            if (!counted(stream)) continue;
            var transport = stream.TransportName.ToLowerInvariant();
            counts[transport] = counts.GetValueOrDefault(transport) + 1;
        }
        return counts.Select(pair => new Measurement<long>(pair.Value, new KeyValuePair<string, object?>("candor.transport", pair.Key)));
    }

    private IEnumerable<Measurement<long>> ObserveQueues()
    {
        if (_server is null) return [];
        var lengths = new List<int>();
        foreach (var stream in _server.Streams.Keys)
            if (stream is C2sStream c2s) lengths.Add(c2s.QueueLength);
        lengths.Sort();
        var max = lengths.Count == 0 ? 0 : lengths[^1];
        var p99 = lengths.Count == 0 ? 0 : lengths[(int)Math.Ceiling(lengths.Count * 0.99) - 1];
        return
        [
            new Measurement<long>(max, new KeyValuePair<string, object?>("candor.statistic", "max")),
            new Measurement<long>(p99, new KeyValuePair<string, object?>("candor.statistic", "p99")),
        ];
    }

    /// <summary>The last counts; a stale one starts a recount in the background (the first scrape waits for it, briefly).</summary>
    private IEnumerable<Measurement<long>> ObserveArchives()
    {
        if (_countArchives is null) return [];
        var stale = Stopwatch.GetElapsedTime(Volatile.Read(ref _countedAt)) >= ArchiveCountInterval;
        if ((_archiveItems is null || stale) && (_counting is null || _counting.IsCompleted))
        {
            Volatile.Write(ref _countedAt, Stopwatch.GetTimestamp());
            _counting = Task.Run(async () =>
            {
                try
                {
                    _archiveItems = await _countArchives();
                }
                catch (System.Data.Common.DbException)
                {
                    // The gauge keeps its last value; the storage error shows in the modules' own operations.
                }
            });
        }
        if (_archiveItems is null) _counting?.Wait(TimeSpan.FromSeconds(5));
        return (_archiveItems ?? new Dictionary<string, long>())
            .Select(pair => new Measurement<long>(pair.Value, new KeyValuePair<string, object?>("candor.store", pair.Key)));
    }

    public void Dispose() => _meter.Dispose();
}
