using System.Runtime.InteropServices;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// packaging/build-deb.sh end to end on this machine, as issue 22 asks: the package is built, installed with
/// dpkg -i into the real system (so the test needs root, as CI has), the unit's command line is started as the
/// candor user against /etc/candor/candor.json (systemd itself may be absent; only the ports are moved to free
/// ones, through the CANDOR__ environment a drop-in would use), slixmpp logs in, an upgrade keeps a changed
/// configuration, and remove then purge leave nothing behind.
/// </summary>
[Trait("Category", "Package")]
public sealed class DebianPackageTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Unit = "/lib/systemd/system/candor.service";
    private const string Config = "/etc/candor/candor.json";
    private const string Data = "/var/lib/candor";
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(15);
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-deb-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // Whatever happened, the machine is left without the package.
        await RunAsync("dpkg", "--purge", "candor");
        Directory.Delete(_directory, recursive: true);
    }

    private async Task<ProcessResult> RunAsync(string command, params string[] arguments)
    {
        var result = await ChildProcess.RunAsync(command, arguments, Long);
        output.WriteLine(result.Describe());
        return result;
    }

    private async Task<string> MustAsync(string command, params string[] arguments)
    {
        var result = await RunAsync(command, arguments);
        Assert.True(result.Succeeded, result.Describe());
        return result.Output;
    }

    private static string Repository
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
                if (File.Exists(Path.Combine(directory.FullName, "packaging", "build-deb.sh"))) return directory.FullName;
            throw new InvalidOperationException($"packaging/build-deb.sh not found above {AppContext.BaseDirectory}");
        }
    }

    [DllImport("libc")]
    private static extern uint geteuid();

    /// <summary>CAP_NET_BIND_SERVICE (bit 10) in the process's effective and ambient sets.</summary>
    private static (ulong Effective, ulong Ambient) NetBindCapability(int pid)
    {
        var status = File.ReadAllLines($"/proc/{pid}/status");
        ulong Set(string name) => Convert.ToUInt64(status.Single(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim(), 16) & (1UL << 10);
        return (Set("CapEff"), Set("CapAmb"));
    }

    private static int FreePrivilegedPort()
    {
        for (var port = 1000; port > 600; port--)
        {
            try
            {
                var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse(CandorServer.Host), port);
                listener.Start();
                listener.Stop();
                return port;
            }
            catch (System.Net.Sockets.SocketException)
            {
            }
        }
        throw new InvalidOperationException("no free port between 600 and 1000 on loopback");
    }

    [Fact]
    public async Task The_package_installs_a_service_that_serves_clients_keeps_a_changed_config_and_purges_cleanly()
    {
        Assert.True(geteuid() == 0, "the package test installs with dpkg into this system: run it as root (CI does)");
        await Tools.RequireSlixmppAsync();
        var setpriv = Tools.RequireCommand("setpriv", "util-linux");
        await RunAsync("dpkg", "--purge", "candor");

        var built = await MustAsync("bash", Path.Combine(Repository, "packaging", "build-deb.sh"), "--out", _directory);
        var deb = built.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last(l => l.EndsWith(".deb"));
        var info = await MustAsync("dpkg-deb", "--info", deb);
        Assert.Contains("Package: candor", info);
        Assert.DoesNotContain("dotnet", info.Split("Depends:")[1].Split('\n')[0]);

        await MustAsync("dpkg", "-i", deb);
        Assert.True(File.Exists("/usr/bin/candor"), "no /usr/bin/candor");
        var passwd = await MustAsync("getent", "passwd", "candor");
        Assert.Contains("/usr/sbin/nologin", passwd);
        Assert.Equal("candor:candor 750", (await MustAsync("stat", "-c", "%U:%G %a", Data)).Trim());
        Assert.Equal("root:candor 640", (await MustAsync("stat", "-c", "%U:%G %a", Config)).Trim());

        var unit = File.ReadAllLines(Unit);
        foreach (var directive in new[] { "User=candor", "ProtectSystem=strict", "ProtectHome=true", "NoNewPrivileges=true", "PrivateTmp=true",
                     "ReadWritePaths=/var/lib/candor", "LimitNOFILE=1048576", "AmbientCapabilities=CAP_NET_BIND_SERVICE" })
            Assert.Contains(directive, unit);
        var execStart = unit.Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal))["ExecStart=".Length..].Split(' ');
        Assert.Equal("/usr/bin/candor", execStart[0]);

        // The unit's command line as the candor user, the ports moved to free ones (as a drop-in's Environment= would).
        var ports = FreePorts.Take(5);
        var environment = new Dictionary<string, string?>
        {
            ["CANDOR__BIND"] = CandorServer.Host,
            ["CANDOR__C2SPORT"] = ports[0].ToString(),
            ["CANDOR__TLSPORT"] = ports[1].ToString(),
            ["CANDOR__HTTPPORT"] = ports[2].ToString(),
            ["CANDOR__HTTPSPORT"] = ports[3].ToString(),
            ["CANDOR__S2SPORT"] = ports[4].ToString(),
        };
        string[] asCandor = ["--reuid=candor", "--regid=candor", "--init-groups", "--"];
        // As systemd starts the unit: the candor user with the unit's ambient capability.
        string[] asTheUnit = ["--reuid=candor", "--regid=candor", "--init-groups", "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "--"];
        var add = await ChildProcess.RunAsync(setpriv, [.. asCandor, "/usr/bin/candor", "user", "add", "alice@localhost", "--password", "alice-secret", "--config", Config],
            TimeSpan.FromMinutes(2), environment);
        Assert.True(add.Succeeded, add.Describe());
        await using (var server = ChildProcess.Start(setpriv, [.. asTheUnit, .. execStart], environment, workingDirectory: Data))
        {
            Assert.True(await server.WaitForOutputAsync("Stop with Ctrl+C", TimeSpan.FromSeconds(60)), server.Output);
            // No port below 1024: the server let the capability go.
            Assert.Equal((0UL, 0UL), NetBindCapability(server.Id));
            var login = await ChildProcess.RunAsync(Tools.Python,
                [Tools.Script("login_once.py"), CandorServer.Host, ports[0].ToString(), "alice@localhost/deb", "alice-secret"], TimeSpan.FromMinutes(2));
            Assert.True(login.Succeeded, $"{login.Describe()}\n{server.Output}");
            var term = await ChildProcess.RunAsync("kill", ["-TERM", server.Id.ToString()], TimeSpan.FromSeconds(10));
            Assert.True(term.Succeeded, term.Describe());
            Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(30)), server.Output);
            Assert.Equal(0, server.ExitCode);
        }
        // A port below 1024 in the configuration: the server keeps the capability and listens there.
        environment["CANDOR__C2SPORT"] = FreePrivilegedPort().ToString();
        await using (var server = ChildProcess.Start(setpriv, [.. asTheUnit, .. execStart], environment, workingDirectory: Data))
        {
            Assert.True(await server.WaitForOutputAsync("Stop with Ctrl+C", TimeSpan.FromSeconds(60)), server.Output);
            Assert.Equal((1UL << 10, 1UL << 10), NetBindCapability(server.Id));
            Assert.Contains($"port {environment["CANDOR__C2SPORT"]}", server.Output);
            await MustAsync("kill", "-TERM", server.Id.ToString());
            Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(30)), server.Output);
        }
        Assert.Equal("candor:candor 600", (await MustAsync("stat", "-c", "%U:%G %a", Path.Combine(Data, "keys", "master.key"))).Trim());
        Assert.Equal("candor", (await MustAsync("stat", "-c", "%U", Path.Combine(Data, "candor.db"))).Trim());

        // An upgrade whose packaged configuration changed keeps the operator's edited one, and ships its own beside it.
        File.AppendAllText(Config, "// edited by the operator\n");
        var unpacked = Path.Combine(_directory, "unpacked");
        await MustAsync("dpkg-deb", "-R", deb, unpacked);
        var control = Path.Combine(unpacked, "DEBIAN", "control");
        File.WriteAllText(control, System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(control), @"(?m)^Version: (.*)$", "Version: $1+upgrade"));
        File.AppendAllText(Path.Combine(unpacked, "etc", "candor", "candor.json"), "// the packaged defaults changed\n");
        var upgrade = Path.Combine(_directory, "candor-upgrade.deb");
        await MustAsync("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", unpacked, upgrade);
        await MustAsync("dpkg", "--force-confdef", "--force-confold", "-i", upgrade);
        Assert.Contains("// edited by the operator", File.ReadAllText(Config));
        Assert.Contains("// the packaged defaults changed", File.ReadAllText(Config + ".dpkg-dist"));
        File.Delete(Config + ".dpkg-dist");

        // Remove keeps configuration and data; purge takes everything, the user too.
        await MustAsync("dpkg", "-r", "candor");
        Assert.False(File.Exists("/usr/bin/candor"));
        Assert.True(File.Exists(Config) && Directory.Exists(Data), "remove must keep the configuration and the data");
        await MustAsync("dpkg", "-P", "candor");
        Assert.False(File.Exists(Config), "purge leaves the configuration");
        Assert.False(Directory.Exists(Data), "purge leaves the data directory");
        Assert.False(Directory.Exists("/usr/lib/candor"), "purge leaves /usr/lib/candor");
        Assert.False((await RunAsync("getent", "passwd", "candor")).Succeeded, "purge leaves the candor user");
        Assert.False((await RunAsync("dpkg", "-s", "candor")).Succeeded, "dpkg still knows the package");
    }
}
