using System.Net.Sockets;
using System.Runtime.InteropServices;
using Xunit.Abstractions;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// A real <c>candor serve</c> process on free loopback ports with its own temporary data directory.
/// <para>
/// The <c>candor</c> executable is found next to the test assembly: the test project references
/// src/Candor, so the build copies candor.dll with its runtimeconfig and deps files into the test
/// output, and it is launched as <c>dotnet candor.dll ...</c>. <c>CANDOR_DLL</c> overrides the path.
/// </para>
/// Use per test (<c>await using var server = await CandorServer.StartAsync(output);</c>) or as an
/// xunit fixture (<see cref="IAsyncLifetime"/>).
/// </summary>
public sealed class CandorServer : IAsyncLifetime, IAsyncDisposable, IC2sServer
{
    public const string Domain = "localhost";
    public const string Host = "127.0.0.1";

    // Generous: on a loaded two-core machine a cluster node (an Orleans silo joining) can take half a minute to start.
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan CliTimeout = TimeSpan.FromSeconds(60);

    private readonly ITestOutputHelper? _log;
    private readonly IReadOnlyList<string> _extraArguments;
    private readonly IReadOnlyDictionary<string, string?>? _environment;
    private readonly int _fileLimit;
    private readonly bool _underNohup;
    private readonly int _s2sPort;
    private ChildProcess? _process;
    private string _finalOutput = "";
    private string _command = "";
    private bool _disposed;

    /// <summary>For use as an xunit fixture (one public constructor, no arguments).</summary>
    public CandorServer()
        : this(null)
    {
    }

    private CandorServer(ITestOutputHelper? log, IReadOnlyList<string>? extraArguments = null,
        IReadOnlyDictionary<string, string?>? environment = null, int fileLimit = 0, string domain = Domain, int s2sPort = 0,
        bool underNohup = false)
    {
        _underNohup = underNohup;
        _log = log;
        ServedDomain = domain;
        _s2sPort = s2sPort;
        _extraArguments = extraArguments ?? [];
        _environment = environment;
        _fileLimit = fileLimit;
        DataDirectory = Directory.CreateTempSubdirectory("candor-interop-").FullName;
    }

    public string DataDirectory { get; }
    /// <summary>The XMPP domain this server serves (<see cref="Domain"/> unless started with another).</summary>
    public string ServedDomain { get; }
    /// <summary>The server's process id (under prlimit and nohup too: they exec the command).</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("the server is not running");
    public int C2sPort { get; private set; }
    public int TlsPort { get; private set; }
    public int HttpPort { get; private set; }
    public int HttpsPort { get; private set; }
    public int S2sPort { get; private set; }

    /// <summary>SHA-256 of the self-signed certificate the server made for itself, for clients to pin.</summary>
    public string CertificateFingerprint
    {
        get
        {
            using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(
                File.ReadAllText(Path.Combine(DataDirectory, "tls", ServedDomain + ".crt")));
            return certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);
        }
    }

    /// <summary>Everything the server wrote to stdout and stderr so far (stderr lines marked).</summary>
    public string Output => _process?.Output ?? _finalOutput;

    /// <summary>Whether the running server writes <paramref name="text"/> within <paramref name="timeout"/>.</summary>
    public Task<bool> WaitForOutputAsync(string text, TimeSpan timeout) =>
        _process?.WaitForOutputAsync(text, timeout) ?? Task.FromResult(false);

    /// <summary>A block to append to assertion messages.</summary>
    public string Transcript =>
        $"--- candor server (c2s {C2sPort}, data {DataDirectory}) ---\n{_command}\n{Output}--- end of server output ---";

    /// <summary>
    /// Starts a server; <paramref name="extraArguments"/> are added to <c>candor serve</c> (e.g. --policy FILE),
    /// <paramref name="environment"/> to its environment (settings as <c>CANDOR__NAME</c>); a <paramref name="fileLimit"/>
    /// runs it under <c>prlimit --nofile</c> with that many file descriptors, <paramref name="underNohup"/> under
    /// <c>nohup</c> (SIGHUP ignored from the start). A federation test names the <paramref name="domain"/> and, when
    /// a peer must know it before the start, the <paramref name="s2sPort"/>.
    /// </summary>
    public static async Task<CandorServer> StartAsync(ITestOutputHelper? log = null, IReadOnlyList<string>? extraArguments = null,
        IReadOnlyDictionary<string, string?>? environment = null, int fileLimit = 0, string domain = Domain, int s2sPort = 0,
        bool underNohup = false)
    {
        var server = new CandorServer(log, extraArguments, environment, fileLimit, domain, s2sPort, underNohup);
        try
        {
            await server.StartAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    Task IAsyncLifetime.InitializeAsync() => StartAsync();

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    public async Task StartAsync()
    {
        Assert.True(_process is null, "the server is already started");
        // A port picked as free can be taken by someone else before candor binds it: retry then.
        for (var attempt = 1; ; attempt++)
        {
            // Every listener on a free port: two servers must never meet on a default port (5281).
            var ports = FreePorts.Take(5);
            (C2sPort, TlsPort, HttpPort, HttpsPort, S2sPort) = (ports[0], ports[1], ports[2], ports[3], _s2sPort > 0 ? _s2sPort : ports[4]);
            string[] serve = [Launcher.DotnetHost, Launcher.CandorDll,
                "serve", "--domain", ServedDomain, "--data", DataDirectory,
                "--c2s-port", C2sPort.ToString(), "--tls-port", TlsPort.ToString(),
                "--http-port", HttpPort.ToString(), "--https-port", HttpsPort.ToString(), "--s2s-port", S2sPort.ToString(), "--bind", Host, .. _extraArguments];
            if (_fileLimit > 0) serve = [Tools.RequireCommand("prlimit", "util-linux"), $"--nofile={_fileLimit}:{_fileLimit}", "--", .. serve];
            if (_underNohup) serve = [Tools.RequireCommand("nohup", "coreutils"), .. serve];
            _process = ChildProcess.Start(serve[0], serve[1..], _environment, workingDirectory: DataDirectory);
            _command = _process.Command;
            _log?.WriteLine($"started candor (pid {_process.Id}): {_command}");

            var failure = await WaitForC2sAsync();
            if (failure is null)
            {
                _log?.WriteLine($"candor accepts c2s connections on {Host}:{C2sPort}");
                return;
            }
            var output = _process.Output;
            await StopProcessAsync();
            if (attempt < 3 && output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                _log?.WriteLine($"port clash, retrying: {output}");
                continue;
            }
            Assert.Fail($"candor serve {failure}\n{Transcript}");
        }
    }

    /// <summary>Null once the c2s port accepts TCP connections, else why not.</summary>
    private async Task<string?> WaitForC2sAsync()
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process!.HasExited)
            {
                await _process.WaitForExitAsync(TimeSpan.FromSeconds(2));
                return $"exited with code {_process.ExitCode} before accepting connections on {Host}:{C2sPort}";
            }
            using var client = new TcpClient();
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await client.ConnectAsync(Host, C2sPort, cts.Token);
                return null;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                await Task.Delay(100);
            }
        }
        return $"did not accept connections on {Host}:{C2sPort} within {StartTimeout.TotalSeconds:0} s";
    }

    /// <summary>Runs <c>candor ARGS --data DIR</c> and returns its result (any exit code).</summary>
    public Task<ProcessResult> RunCliAsync(params string[] arguments) =>
        ChildProcess.RunAsync(Launcher.DotnetHost, [Launcher.CandorDll, .. arguments, "--data", DataDirectory], CliTimeout);

    /// <summary><c>candor user add JID --password PW --data DIR</c>; exit code 0 required.</summary>
    public async Task AddUserAsync(string jid, string password)
    {
        var result = await RunCliAsync("user", "add", jid, "--password", password, "--domain", ServedDomain);
        Assert.True(result.Succeeded, $"candor user add {jid} failed\n{result.Describe()}\n{Transcript}");
        _log?.WriteLine($"added user {jid}");
    }

    /// <summary>SIGTERM, up to 10 s for a clean exit, then kill.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }
        await StopProcessAsync();
    }

    /// <summary>SIGKILL, as a crash or an OOM killer would: no shutdown code runs. <see cref="StartAsync()"/> starts it again on the same data.</summary>
    public async Task KillHardAsync()
    {
        var process = _process!;
        process.Kill();
        Assert.True(await process.WaitForExitAsync(StopTimeout), "candor did not die of SIGKILL");
        _log?.WriteLine($"candor killed with SIGKILL (exit code {process.ExitCode})");
        await process.DisposeAsync();
        _finalOutput = process.Output;
        _process = null;
    }

    private async Task StopProcessAsync()
    {
        var process = _process!;
        if (!process.HasExited)
        {
            if (Signals.Terminate(process.Id) && await process.WaitForExitAsync(StopTimeout))
            {
                _log?.WriteLine($"candor exited with code {process.ExitCode} after SIGTERM");
            }
            else
            {
                _log?.WriteLine($"candor did not exit within {StopTimeout.TotalSeconds:0} s of SIGTERM, killing it");
                process.Kill();
            }
        }
        await process.DisposeAsync();
        _finalOutput = process.Output;
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await StopAsync();
        _log?.WriteLine(Transcript);
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp directory left behind is harmless
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>How to launch the candor executable built alongside the tests.</summary>
    public static class Launcher
    {
        public static string CandorDll { get; } = FindCandorDll();

        /// <summary>The dotnet host running these tests (the same SDK/runtime that built candor).</summary>
        public static string DotnetHost { get; } = FindDotnetHost();

        private static string FindCandorDll()
        {
            var path = Environment.GetEnvironmentVariable("CANDOR_DLL");
            if (string.IsNullOrEmpty(path))
            {
                path = Path.Combine(AppContext.BaseDirectory, "candor.dll");
            }
            Assert.True(File.Exists(path),
                $"{path} not found: the test project references src/Candor, so building it should copy candor.dll here (or set CANDOR_DLL)");
            var runtimeConfig = Path.ChangeExtension(path, ".runtimeconfig.json");
            Assert.True(File.Exists(runtimeConfig), $"{runtimeConfig} not found: 'dotnet candor.dll' needs it");
            return path;
        }

        private static string FindDotnetHost()
        {
            var hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(hostPath) && File.Exists(hostPath))
            {
                return hostPath;
            }
            var self = Environment.ProcessPath;
            if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
            {
                return self;
            }
            return Tools.FindOnPath("dotnet") ?? "dotnet";
        }
    }

    private static class Signals
    {
        private const int SIGTERM = 15;

        [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static extern int Kill(int pid, int signal);

        /// <summary>Sends SIGTERM; false if it could not be sent.</summary>
        public static bool Terminate(int pid)
        {
            try
            {
                return Kill(pid, SIGTERM) == 0;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return false;
            }
        }
    }
}
