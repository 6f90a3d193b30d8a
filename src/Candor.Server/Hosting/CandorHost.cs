using System.Net;
using System.Net.Sockets;
using Candor.Server.Accounts;
using Candor.Server.Audit;
using Candor.Server.Modules.Policy;
using Candor.Server.Connections;
using Candor.Server.Core;
using Candor.Server.Modules;
using Candor.Server.Storage;
using Candor.Server.Web;
using Candor.Xmpp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Hosting;

/// <summary>
/// A running Candor server: Kestrel listeners for c2s (STARTTLS and direct TLS), s2s and HTTP, the storage,
/// and the modules. <see cref="StartAsync"/> returns once every listener accepts connections.
/// </summary>
public sealed class CandorHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ListenOptions _c2s;
    private readonly ListenOptions? _tls;
    private readonly ListenOptions? _http;
    private readonly ListenOptions? _https;
    private ListenOptions? _s2s;
    private ListenOptions? _s2sTls;
    private int _stopped;
    private Task _operatorChanges = Task.CompletedTask;
    private Task _keyWatch = Task.CompletedTask;
    private Task _auditHeads = Task.CompletedTask;
    private Task _certificateWatch = Task.CompletedTask;
    private CertificateReload? _certificates;

    private CandorHost(WebApplication app, XmppServer server, ListenOptions c2s, ListenOptions? tls, ListenOptions? http, ListenOptions? https)
    {
        _app = app;
        Server = server;
        _c2s = c2s;
        _tls = tls;
        _http = http;
        _https = https;
    }

    public XmppServer Server { get; }
    public int C2sPort => _c2s.IPEndPoint!.Port;
    public int TlsPort => _tls?.IPEndPoint!.Port ?? -1;
    public int HttpPort => _http?.IPEndPoint!.Port ?? -1;
    public int HttpsPort => _https?.IPEndPoint!.Port ?? -1;
    public int S2sPort => _s2s?.IPEndPoint!.Port ?? -1;
    public int S2sTlsPort => _s2sTls?.IPEndPoint!.Port ?? -1;
    public Task Stopped => _app.WaitForShutdownAsync();

    /// <summary>Builds and starts the server. <paramref name="configureLogging"/> lets the CLI and tests choose where logs go.</summary>
    public static async Task<CandorHost> StartAsync(ServerOptions options, Action<string> announce, Action<ILoggingBuilder>? configureLogging = null)
    {
        options.Validate();
        Directory.CreateDirectory(options.DataDirectory);
        var certificate = Certificates.Load(options, announce);
        var tls = new TlsSettings(certificate);
        var s2sTrust = Federation.S2sTrust.Load(options);

        // The host's default configuration watches appsettings.json for changes with a watcher on the working directory
        // and everything below it, which is where the data directory is by default: every write of the database then
        // woke a thread of the server (5-7 % of its CPU with archiving on). Candor reads no appsettings.json changes.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        configureLogging?.Invoke(builder.Logging);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));

        if (options.ClusterPort > 0) await Cluster.ClusterSilo.ConfigureAsync(builder, options);
        var storage = await SealedStorage.OpenAsync(options);
        if (storage.Migrated > 0) announce($"Sealed {storage.Migrated} records stored in plaintext by an earlier version (key {storage.Keys.Current.IdText}).");
        var audit = AuditLog.Open(options);
        builder.Services.AddSingleton(tls);
        MetricsEndpoint.AddServices(builder.Services, options);
        builder.Services.AddSingleton(sp =>
        {
            var loggers = sp.GetRequiredService<ILoggerFactory>();
            storage.Log = loggers.CreateLogger<SealedStorage>();
            var server = new XmppServer(options, storage, loggers) { Audit = audit };
            if (options.Metrics) storage.Metrics = server.Metrics;
            server.Metrics.Attach(server, storage.CountArchiveItemsAsync);
            if (options.S2sPort >= 0) server.S2s = new Federation.S2sService(server, tls, s2sTrust);
            ModuleCatalog.RegisterAll(server);
            return server;
        });
        Func<EndPoint, Socket> listenSocket = options.TcpKeepAliveSeconds > 0
            ? endpoint => KeepAliveListenSocket(endpoint, options.TcpKeepAliveSeconds)
            : SocketTransportOptions.CreateDefaultBoundListenSocket;
        var streamEndPoints = new HashSet<EndPoint>(ReferenceEqualityComparer.Instance);
        builder.Services.AddSingleton<IConnectionListenerFactory>(sp =>
            new GuardedSocketTransport(listenSocket, streamEndPoints, sp.GetRequiredService<XmppServer>().ConnectionLimits, sp.GetRequiredService<ILoggerFactory>()));
        ListenOptions? c2s = null, direct = null, http = null, https = null, s2s = null, s2sTls = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            c2s = Listen(kestrel, options.Bind, options.C2sPort, l => l.UseConnectionHandler<StartTlsC2sHandler>());
            streamEndPoints.Add(c2s.EndPoint);
            if (options.TlsPort >= 0)
            {
                direct = Listen(kestrel, options.Bind, options.TlsPort, l => l.UseConnectionHandler<DirectTlsC2sHandler>());
                streamEndPoints.Add(direct.EndPoint);
            }
            if (options.S2sPort >= 0)
                s2s = Listen(kestrel, options.Bind, options.S2sPort, l => l.UseConnectionHandler<Federation.S2sConnectionHandler>());
            if (options.S2sPort >= 0 && options.S2sTlsPort >= 0 && certificate is not null)
                s2sTls = Listen(kestrel, options.Bind, options.S2sTlsPort, l => l.UseConnectionHandler<Federation.DirectTlsS2sConnectionHandler>());
            if (options.HttpPort >= 0)
                http = Listen(kestrel, options.Bind, options.HttpPort, l => l.Protocols = HttpProtocols.Http1);
            if (options.HttpsPort >= 0 && certificate is not null)
                https = Listen(kestrel, options.Bind, options.HttpsPort, l =>
                {
                    l.Protocols = HttpProtocols.Http1;
                    // Per handshake, so that a reloaded certificate serves new connections at once.
                    l.UseHttps((_, _, _, _) => ValueTask.FromResult(tls.Current!.HttpsOptions), state: tls);
                });
        });
        var app = builder.Build();
        var server = app.Services.GetRequiredService<XmppServer>();
        MetricsEndpoint.Map(app, options);

        var host = new CandorHost(app, server, c2s!, direct, http, https) { _s2s = s2s, _s2sTls = s2sTls };
        string UploadBaseUrl() => options.UploadBaseUrl
            ?? (host.HttpsPort >= 0 ? $"https://{options.Domain}:{host.HttpsPort}" : $"http://{options.Domain}:{host.HttpPort}");
        WebClientEndpoint.Map(app, options, string.IsNullOrEmpty(options.UploadDomain) ? null : UploadBaseUrl);
        Modules.Policy.PolicyModule.MapEndpoints(app, server, () => host.HttpPort);
        AuditEndpoints.Map(app, audit);
        WebSocketEndpoint.Map(app, server, tls, () => host.HttpsPort);
        BoshEndpoint.Map(app, server, tls);
        Modules.Upload.UploadModule.MapEndpoints(app, server, UploadBaseUrl);
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            // Federation first, while the senders are still connected to hear of what it could not hand over.
            server.S2s?.StopAsync(TimeSpan.FromSeconds(2)).GetAwaiter().GetResult();
            server.CloseAllStreams(StreamErrors.SystemShutdown, "the server is shutting down");
        });
        try
        {
            await app.StartAsync();
        }
        catch (IOException e)
        {
            await storage.DisposeAsync();
            throw new OptionsException($"cannot listen: {e.Message}");
        }
        if (options.ClusterPort > 0)
        {
            var node = await Cluster.ClusterNode.StartAsync(server, app.Services, app.Lifetime.ApplicationStopping);
            node.ReloadPolicyHere = () => host.ReloadPolicyHere();
            announce($"Cluster node {node.Id}, linked to {node.Peers.Count} other node(s).");
        }
        host._operatorChanges = OperatorChanges.ApplyWhileRunningAsync(server, app.Lifetime.ApplicationStopping);
        if (certificate is not null)
        {
            host._certificates = new CertificateReload(options, tls, server.LoggerFactory.CreateLogger<CertificateReload>());
            host._certificateWatch = host._certificates.WatchAsync(app.Lifetime.ApplicationStopping);
        }
        host._keyWatch = KeyWatch.RunAsync(storage, server.LoggerFactory.CreateLogger(typeof(KeyWatch)), app.Lifetime.ApplicationStopping);
        var startDetails = AuditActions.StartDetails(server);
        if (AuditActions.ChangesSince(audit.LatestOf(AuditActions.ServerStarted), startDetails) is { Count: > 0 } changes)
            await audit.AppendAsync(AuditEntry.Actors.Server, AuditActions.ConfigurationChanged, null, changes);
        await audit.AppendAsync(AuditEntry.Actors.Server, AuditActions.ServerStarted, null, startDetails);
        audit.SignHead();
        host._auditHeads = AuditActions.SignHeadsAsync(audit, server.LoggerFactory.CreateLogger<AuditLog>(), app.Lifetime.ApplicationStopping);
        return host;
    }

    private static ListenOptions Listen(KestrelServerOptions kestrel, string bind, int port, Action<ListenOptions> configure)
    {
        ListenOptions? captured = null;
        void Capture(ListenOptions l)
        {
            captured = l;
            configure(l);
        }
        if (bind is "*" or "") kestrel.ListenAnyIP(port, Capture);
        else if (bind == "localhost") kestrel.Listen(IPAddress.Loopback, port, Capture);
        else if (IPAddress.TryParse(bind, out var address)) kestrel.Listen(address, port, Capture);
        else throw new OptionsException($"--bind: '{bind}' is not an IP address");
        return captured!;
    }

    /// <summary>
    /// A listening socket whose accepted connections inherit TCP keepalive (Linux copies the settings to them):
    /// a peer that vanished without closing — a phone that lost its network — is found after the idle time plus
    /// five unanswered probes a minute apart, and its session ends instead of swallowing messages.
    /// </summary>
    private static Socket KeepAliveListenSocket(EndPoint endpoint, int idleSeconds)
    {
        var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        if (socket.ProtocolType != ProtocolType.Tcp) return socket;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, idleSeconds);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 60);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 5);
        return socket;
    }

    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        await _app.StopAsync();
        await _operatorChanges;
        await Server.Hooks.Stopping.FireAsync(Server);
        await _keyWatch;
        await _certificateWatch;
        await _auditHeads;
        await Server.Audit.AppendAsync(AuditEntry.Actors.Server, AuditActions.ServerStopped, null);
        Server.Audit.SignHead();
        await _app.DisposeAsync();
        Server.Uploads?.Dispose();
        Server.Metrics.Dispose();
        await Server.Storage.DisposeAsync();
    }

    /// <summary>
    /// Re-reads the policy file, as SIGHUP from the operator ('candor policy reload') asks, and logs it; in a cluster
    /// every other node re-reads its own policy file too.
    /// </summary>
    public PolicyReloadResult ReloadPolicy()
    {
        var result = ReloadPolicyHere();
        Server.Cluster?.PolicyReloaded();
        return result;
    }

    private PolicyReloadResult ReloadPolicyHere()
    {
        var result = Server.Policy.Reload();
        var details = new Dictionary<string, string> { ["version"] = result.Version, ["sha256"] = result.Digest, ["changed"] = result.Changed ? "yes" : "no" };
        if (result.Error is { } error) details["error"] = error;
        Server.Audit.AppendAsync(AuditEntry.Actors.Operator, result.Ok ? AuditActions.PolicyReloaded : AuditActions.PolicyReloadFailed, null, details).GetAwaiter().GetResult();
        return result;
    }

    /// <summary>Loads the certificate and key again if their files changed (SIGHUP); new connections use them.</summary>
    public string ReloadCertificate() => _certificates?.Reload() ?? "no certificate in use";

    public ValueTask DisposeAsync() => new(StopAsync());
}
