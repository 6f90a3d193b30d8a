using System.CommandLine;
using Candor.Server.Connections;
using System.Runtime.InteropServices;
using Candor.Server.Hosting;
using Microsoft.Extensions.Logging;

namespace Candor.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var c2sPort = new Option<int?>("--c2s-port") { Description = "Client port with STARTTLS (default 5222)" };
        var tlsPort = new Option<int?>("--tls-port") { Description = "Client port with direct TLS, XEP-0368 (default 5223; -1 disables)" };
        var s2sPort = new Option<int?>("--s2s-port") { Description = "Server-to-server port, federation (default 5269; -1 disables)" };
        var httpPort = new Option<int?>("--http-port") { Description = "HTTP port (default 5280; -1 disables)" };
        var httpsPort = new Option<int?>("--https-port") { Description = "HTTPS port for wss:// (default 5281; -1 disables)" };
        var clusterPort = new Option<int?>("--cluster-port") { Description = "Join the cluster of the nodes sharing --postgres, with this node's Orleans silo on PORT (docs/CLUSTER.md)" };
        var clusterAdvertise = new Option<string?>("--cluster-advertise") { Description = "IP address the other nodes reach this node's silo at (default: --bind, else 127.0.0.1)" };
        var bind = new Option<string?>("--bind") { Description = "Address to listen on (default: all interfaces)" };
        var cert = new Option<string?>("--cert") { Description = "TLS certificate (PEM); default: self-signed, made on first start" };
        var key = new Option<string?>("--key") { Description = "Private key of --cert (PEM)" };
        var plaintext = new Option<bool>("--allow-plaintext") { Description = "Allow unencrypted c2s and PLAIN without TLS (loopback benchmarks only)" };
        var registration = new Option<bool>("--allow-registration") { Description = "Allow in-band account creation (XEP-0077), rate-limited per address" };
        var policy = new Option<string?>("--policy") { Description = "Content policy file (JSON, see docs/CONFIGURATION.md); reloaded on SIGHUP or 'candor policy reload'" };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Least severe log level shown", DefaultValueFactory = _ => LogLevel.Information };
        var logFormat = new Option<string>("--log-format") { Description = "console (one line per entry, for people) or json (one JSON object per line, for collectors)", DefaultValueFactory = _ => "console" };
        logFormat.AcceptOnlyFromAmong("console", "json");

        var command = new Command("serve", "Run the server (defaults: domain localhost, data in ./candor-data, ports 5222/5223/5269/5280/5281)");
        common.AddTo(command);
        foreach (var option in new Option[] { c2sPort, tlsPort, s2sPort, httpPort, httpsPort, clusterPort, clusterAdvertise, bind, cert, key, plaintext, registration, policy, logLevel, logFormat }) command.Add(option);
        command.SetAction(async (parse, cancellation) =>
        {
            ServerOptions options;
            try
            {
                options = common.Load(parse, o =>
                {
                    if (parse.GetValue(c2sPort) is { } c) o.C2sPort = c;
                    if (parse.GetValue(tlsPort) is { } t) o.TlsPort = t;
                    if (parse.GetValue(s2sPort) is { } s) o.S2sPort = s;
                    if (parse.GetValue(httpPort) is { } h) o.HttpPort = h;
                    if (parse.GetValue(httpsPort) is { } hs) o.HttpsPort = hs;
                    if (parse.GetValue(bind) is { } b) o.Bind = b;
                    if (parse.GetValue(clusterPort) is { } cp) o.ClusterPort = cp;
                    if (parse.GetValue(clusterAdvertise) is { } ca) o.ClusterAdvertise = ca;
                    if (parse.GetValue(cert) is { } cf) o.CertificateFile = cf;
                    if (parse.GetValue(key) is { } kf) o.KeyFile = kf;
                    if (parse.GetValue(plaintext)) o.AllowPlaintext = true;
                    if (parse.GetValue(registration)) o.AllowRegistration = true;
                    if (parse.GetValue(policy) is { } pf) o.PolicyFile = pf;
                });
            }
            catch (OptionsException e)
            {
                Console.Error.WriteLine($"candor serve: {e.Message}");
                return ExitCodes.Usage;
            }
            BindCapability.DropUnlessNeeded(options);
            // One server per data directory: a second one would share the database, and on stopping delete the
            // first one's candor.pid, after which 'candor policy reload' no longer finds it. The lock goes with the process.
            using var dataLock = LockDataDirectory(options.DataDirectory);
            if (dataLock is null)
            {
                Console.Error.WriteLine($"candor serve: another candor serve is running on {Path.GetFullPath(options.DataDirectory)}");
                return ExitCodes.Failure;
            }
            var level = parse.GetValue(logLevel);
            CandorHost host;
            try
            {
                var json = parse.GetValue(logFormat) == "json";
                host = await CandorHost.StartAsync(options, Console.WriteLine, logging => (json
                        ? logging.AddJsonConsole(o => { o.UseUtcTimestamp = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ"; })
                        : logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }))
                    .SetMinimumLevel(level)
                    .AddFilter("Microsoft", LogLevel.Warning)
                    // A port in use makes the host log its exception with the stack trace; StartAsync reports it in one line.
                    .AddFilter("Microsoft.Extensions.Hosting", LogLevel.Critical));
            }
            catch (Exception e) when (e is OptionsException or Candor.Server.Storage.KeyException)
            {
                Console.Error.WriteLine($"candor serve: {e.Message}");
                return ExitCodes.Failure;
            }
            var pidFile = Path.Combine(options.DataDirectory, PolicyCommand.PidFileName);
            File.WriteAllText(pidFile, Environment.ProcessId + "\n");
            // SIGHUP reloads the policy and a renewed certificate (the conventional daemon reload); 'candor policy reload' sends it.
            PolicyCommand.Signals.UnignoreHangup();
            using var reload = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                host.ReloadCertificate();
                host.ReloadPolicy();
            });
            Announce(options, host);
            using var stopping = new CancellationTokenSource();
            var trimming = IdleMemoryTrim.RunAsync(options.TrimMemoryAfterMegabytes, host.Server.LoggerFactory.CreateLogger(typeof(IdleMemoryTrim)), stopping.Token);
            await host.Stopped;
            await stopping.CancelAsync();
            await trimming;
            await host.StopAsync();
            File.Delete(pidFile);
            Console.WriteLine("Candor stopped.");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>An exclusive lock on DIR/candor.lock, held while the server runs; null when another process holds it.</summary>
    internal static FileStream? LockDataDirectory(string directory)
    {
        Directory.CreateDirectory(directory);
        try
        {
            return new FileStream(Path.Combine(directory, "candor.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static void Announce(ServerOptions options, CandorHost host)
    {
        var address = options.Bind is "*" or "" ? "all interfaces" : options.Bind;
        Console.WriteLine($"Candor {host.Server.Version} serving {options.Domain}, data in {Path.GetFullPath(options.DataDirectory)}");
        Console.WriteLine($"  c2s with STARTTLS   {address} port {host.C2sPort}");
        if (host.TlsPort >= 0) Console.WriteLine($"  c2s with direct TLS {address} port {host.TlsPort}");
        if (host.HttpPort >= 0) Console.WriteLine($"  HTTP                {address} port {host.HttpPort}  (web client, XMPP over WebSocket at {WebSocketEndpoint.Path})");
        if (host.HttpsPort >= 0) Console.WriteLine($"  HTTPS               {address} port {host.HttpsPort}");
        if (options.AllowPlaintext)
        {
            Console.WriteLine("  WARNING: --allow-plaintext is ON: clients may log in WITHOUT ENCRYPTION and send passwords in clear text.");
            Console.WriteLine("  WARNING: use it only for benchmarks on loopback.");
        }
        if (options.AllowRegistration) Console.WriteLine("  In-band registration is ON (rate-limited per address).");
        var policy = host.Server.Policy;
        var published = policy.Current.Published;
        Console.WriteLine(policy.File is null
            ? $"  Policy              no content rules (no --policy); SHA-256 {published.Digest}"
            : $"  Policy              {policy.File}: version {published.Version}, {policy.Current.Matcher.Rules.Count} rule{(policy.Current.Matcher.Rules.Count == 1 ? "" : "s")}, SHA-256 {published.Digest}");
        if (policy.Url is { } url) Console.WriteLine($"  Published at        {url}");
        var dataFlag = options.DataDirectory == "candor-data" ? "" : $" --data {options.DataDirectory}";
        Console.WriteLine($"Add a user:  candor user add alice@{options.Domain}{dataFlag}");
        Console.WriteLine("Stop with Ctrl+C.");
    }
}
