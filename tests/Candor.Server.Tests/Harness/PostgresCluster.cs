using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Candor.Server.Tests.Harness;

/// <summary>
/// A private PostgreSQL cluster for the tests (Debian's <c>postgresql</c> package, never its system service):
/// initdb and pg_ctl under a temporary directory, on a free loopback port, its Unix socket in that directory,
/// password authentication over TCP. One per test process, started on first use and stopped when the process
/// exits; each caller gets a database of its own. PostgreSQL refuses to run as root, so as root (CI) the cluster
/// runs as the <c>postgres</c> user the package creates.
/// </summary>
public sealed class PostgresCluster
{
    private const string Superuser = "candor";
    private const string Password = "candor-test";
    private static readonly Lazy<Task<PostgresCluster>> Shared = new(StartAsync);
    private static int _databases;

    private readonly string _directory;
    private readonly string _bin;
    private readonly int _port;

    private PostgresCluster(string directory, string bin, int port)
    {
        _directory = directory;
        _bin = bin;
        _port = port;
    }

    public static Task<PostgresCluster> GetAsync() => Shared.Value;

    /// <summary>The connection string of a new, empty database.</summary>
    public static async Task<string> NewDatabaseAsync()
    {
        var cluster = await GetAsync();
        var name = $"candor_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
        await using (var connection = new NpgsqlConnection(cluster.ConnectionString("postgres")))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }
        return cluster.ConnectionString(name);
    }

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={_port};Username={Superuser};Password={Password};Database={database}";

    private static async Task<PostgresCluster> StartAsync()
    {
        var bin = FindBinaries();
        RemoveStopped();
        var directory = Directory.CreateTempSubdirectory("candor-pg-").FullName;
        var asRoot = Environment.UserName == "root";
        if (asRoot) await RunAsync("chown", ["postgres:postgres", directory], asRoot: false);
        var data = Path.Combine(directory, "data");
        var passwordFile = Path.Combine(directory, "password");
        await File.WriteAllTextAsync(passwordFile, Password + "\n");
        if (asRoot) await RunAsync("chown", ["postgres:postgres", passwordFile], asRoot: false);
        await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", Superuser, "--pwfile", passwordFile, "--auth-host=scram-sha-256",
            "--auth-local=peer", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], asRoot);
        var port = FreePort();
        // fsync off: a test cluster that is thrown away whatever happens need not survive a power failure.
        await RunAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-l", Path.Combine(directory, "log"), "-w", "-t", "60", "-o",
            $"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start"], asRoot);
        var cluster = new PostgresCluster(directory, bin, port);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.Stop(asRoot);
        return cluster;
    }

    private void Stop(bool asRoot)
    {
        try
        {
            var stop = Process.Start(StartInfo(Path.Combine(_bin, "pg_ctl"), ["-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop"], asRoot));
            stop?.WaitForExit(30_000);
            Directory.Delete(_directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            // The process is exiting: the temporary directory is left behind at worst.
        }
    }

    /// <summary>
    /// Clusters of earlier test processes that stopped (no postmaster.pid) but whose directory outlived them: the
    /// process may exit before its exit handler has deleted everything.
    /// </summary>
    private static void RemoveStopped()
    {
        foreach (var stale in Directory.GetDirectories(Path.GetTempPath(), "candor-pg-*"))
        {
            // A recent one may be another test process's still running initdb.
            if (File.Exists(Path.Combine(stale, "data", "postmaster.pid")) || Directory.GetLastWriteTimeUtc(stale) > DateTime.UtcNow.AddMinutes(-10)) continue;
            try
            {
                Directory.Delete(stale, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another test process's, being removed right now.
            }
        }
    }

    /// <summary>Debian installs the server programs under /usr/lib/postgresql/VERSION/bin, off the PATH.</summary>
    private static string FindBinaries()
    {
        var versions = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Where(d => File.Exists(Path.Combine(d, "bin", "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0).ToList()
            : [];
        if (versions.Count > 0) return Path.Combine(versions[0], "bin");
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"))) return dir;
        throw new InvalidOperationException("PostgreSQL server programs (initdb, pg_ctl) not found: install Debian's postgresql package (test.sh does)");
    }

    private static ProcessStartInfo StartInfo(string program, string[] arguments, bool asRoot)
    {
        var info = new ProcessStartInfo(asRoot ? "runuser" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        if (asRoot)
        {
            foreach (var a in new[] { "-u", "postgres", "--", program }) info.ArgumentList.Add(a);
        }
        foreach (var a in arguments) info.ArgumentList.Add(a);
        return info;
    }

    private static async Task RunAsync(string program, string[] arguments, bool asRoot)
    {
        using var process = Process.Start(StartInfo(program, arguments, asRoot))!;
        // pg_ctl start leaves the server holding its output pipes: read only until pg_ctl itself exits.
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await error}{await output}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
