using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Client;
using Candor.Server.Hosting;
using Candor.Server.Modules.Policy;
using Candor.Server.Storage;
using Candor.Xmpp;

namespace Candor.Cli;

/// <summary>
/// <c>candor check</c>, like <c>prosodyctl check</c>: reads the configuration the way <c>candor serve</c> does and
/// says, one line per finding, what is wrong with it and the machine around it. Exit 0 (fine), 1 (warnings), 2 (errors).
/// </summary>
internal static class CheckCommand
{
    public enum Severity { Ok, Warning, Error }

    private sealed record Finding(Severity Severity, string Area, string Message);

    private static readonly TimeSpan DnsTimeout = TimeSpan.FromSeconds(3);
    internal const int CertificateWarningDays = 30;

    public static Command Create()
    {
        var common = new CommonOptions();
        var resolver = new Option<string?>("--resolver") { Description = "DNS server (ADDRESS or ADDRESS:PORT) to ask instead of /etc/resolv.conf's" };
        var command = new Command("check", "Check the configuration, certificate, DNS, ports, file permissions and policy; exit 0 fine, 1 warnings, 2 errors");
        common.AddTo(command);
        command.Add(resolver);
        command.SetAction(async (parse, cancellation) =>
        {
            var findings = new List<Finding>();
            ServerOptions? options = null;
            try
            {
                options = common.Load(parse);
                findings.Add(new(Severity.Ok, "config", $"valid; domain {options.Domain}, data in {Path.GetFullPath(options.DataDirectory)}"));
            }
            catch (OptionsException e)
            {
                findings.Add(new(Severity.Error, "config", e.Message));
            }
            if (options is not null)
            {
                IReadOnlyList<IPEndPoint>? servers = null;
                if (parse.GetValue(resolver) is { } r)
                {
                    if (!IPEndPoint.TryParse(r, out var endpoint))
                    {
                        Console.Error.WriteLine($"candor check: --resolver '{r}' is not an address or address:port");
                        return ExitCodes.Usage;
                    }
                    if (endpoint.Port == 0) endpoint.Port = 53;
                    servers = [endpoint];
                }
                findings.AddRange(Certificate(options));
                findings.AddRange(await DnsAsync(options, servers, cancellation));
                findings.AddRange(Ports(options));
                findings.AddRange(Files(options));
                findings.Add(Policy(options));
            }
            foreach (var finding in findings)
                Console.WriteLine($"{finding.Severity.ToString().ToLowerInvariant(),-8}{finding.Area}: {finding.Message}");
            var worst = findings.Max(f => f.Severity);
            return worst switch { Severity.Ok => 0, Severity.Warning => 1, _ => 2 };
        });
        return command;
    }

    private static IEnumerable<Finding> Certificate(ServerOptions options)
    {
        var certPath = options.CertificateFile ?? Path.Combine(options.DataDirectory, "tls", options.Domain + ".crt");
        var keyPath = options.KeyFile ?? Path.Combine(options.DataDirectory, "tls", options.Domain + ".key");
        if (options.CertificateFile is null && !File.Exists(certPath))
        {
            yield return new(Severity.Warning, "certificate", $"none configured: the first start makes a self-signed one ({certPath}) that clients do not trust; give CertificateFile and KeyFile");
            yield break;
        }
        var certificate = LoadCertificate(certPath, keyPath, out var failure);
        if (certificate is null)
        {
            yield return new(Severity.Error, "certificate", $"cannot load {certPath} with key {keyPath}: {failure}");
            yield break;
        }
        using (certificate)
        {
            var now = DateTime.Now;
            var expires = certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
            if (certificate.NotAfter <= now)
                yield return new(Severity.Error, "certificate", $"{certPath} expired on {expires}");
            else if (certificate.NotBefore > now)
                yield return new(Severity.Error, "certificate", $"{certPath} is not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm} UTC");
            else if (certificate.NotAfter <= now.AddDays(CertificateWarningDays))
                yield return new(Severity.Warning, "certificate", $"{certPath} expires on {expires}, within {CertificateWarningDays} days: renew it");
            else
                yield return new(Severity.Ok, "certificate", $"{certPath} valid until {expires}");
            // Upload and TURN have no settings on this branch yet; their names join this list when they do.
            var names = new List<string> { options.Domain };
            if (!string.IsNullOrEmpty(options.MucDomain)) names.Add(options.MucDomain);
            var uncovered = names.Where(n => !certificate.MatchesHostname(n)).ToList();
            yield return uncovered.Count == 0
                ? new(Severity.Ok, "certificate", $"covers {string.Join(", ", names)}")
                : new(Severity.Error, "certificate", $"does not cover {string.Join(", ", uncovered)} (clients refuse the connection)");
            if (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData))
                yield return new(Severity.Warning, "certificate", "self-signed: clients trust it only if told to (pin its fingerprint or use a CA such as Let's Encrypt)");
        }
    }

    private static X509Certificate2? LoadCertificate(string certPath, string keyPath, out string failure)
    {
        failure = "";
        try
        {
            return X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            failure = e.Message;
            return null;
        }
    }

    private static async Task<IEnumerable<Finding>> DnsAsync(ServerOptions options, IReadOnlyList<IPEndPoint>? servers, CancellationToken cancellation)
    {
        var domain = options.Domain;
        if (domain == "localhost" || domain.EndsWith(".localhost", StringComparison.Ordinal) || IPAddress.TryParse(domain.Trim('[', ']'), out _))
            return [new(Severity.Ok, "dns", $"{domain} is local: no DNS records needed")];
        var findings = new List<Finding>();
        var services = new List<(string Service, int Port)> { ("_xmpp-client._tcp", options.C2sPort) };
        if (options.TlsPort > 0) services.Add(("_xmpps-client._tcp", options.TlsPort));
        services.Add(("_xmpp-server._tcp", 5269));
        var answers = await Task.WhenAll(services.Select(s => SrvResolver.QueryAsync($"{s.Service}.{domain}", servers, DnsTimeout, cancellation)));
        foreach (var ((service, port), records) in services.Zip(answers))
        {
            var name = $"{service}.{domain}";
            if (records.Count == 0)
                findings.Add(new(Severity.Warning, "dns", $"no SRV record {name} (or DNS did not answer); clients fall back to {domain}"));
            else if (records.All(r => r.Port != port))
                findings.Add(new(Severity.Warning, "dns", $"SRV {name} points to port {string.Join(", ", records.Select(r => r.Port).Distinct())}, not {port}"));
            else
                findings.Add(new(Severity.Ok, "dns", $"SRV {name} -> {string.Join(", ", records.Select(r => $"{r.Target}:{r.Port}"))}"));
        }
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(domain, cancellation).WaitAsync(DnsTimeout, cancellation);
            findings.Add(addresses.Length == 0
                ? new(Severity.Warning, "dns", $"{domain} has no A or AAAA record")
                : new(Severity.Ok, "dns", $"{domain} -> {string.Join(", ", addresses.Select(a => a.ToString()))}"));
        }
        catch (Exception e) when (e is SocketException or TimeoutException)
        {
            findings.Add(new(Severity.Warning, "dns", $"no A or AAAA record for {domain} (or DNS did not answer): {e.Message}"));
        }
        return findings;
    }

    private static IEnumerable<Finding> Ports(ServerOptions options)
    {
        var address = options.Bind switch
        {
            "*" or "" => IPAddress.IPv6Any,
            "localhost" => IPAddress.Loopback,
            _ => IPAddress.Parse(options.Bind),
        };
        var ports = new[] { ("c2s", options.C2sPort), ("direct TLS", options.TlsPort), ("HTTP", options.HttpPort), ("HTTPS", options.HttpsPort) };
        int? serverPid = RunningServer(options.DataDirectory);
        foreach (var (name, port) in ports)
        {
            if (port <= 0) continue;
            if (IsFree(address, port))
                yield return new(Severity.Ok, "ports", $"{name} port {port} is free");
            else if (serverPid is { } pid && ListeningInodes(port).Any(inode => ProcessHoldsSocket(pid, inode)))
                yield return new(Severity.Ok, "ports", $"{name} port {port} is held by this server (pid {pid})");
            else
                yield return new(Severity.Error, "ports", $"{name} port {port} is in use by another program");
        }
    }

    private static bool IsFree(IPAddress address, int port)
    {
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The pid of the server running on this data directory: it holds candor.lock and wrote candor.pid.</summary>
    private static int? RunningServer(string dataDirectory)
    {
        if (!Directory.Exists(dataDirectory)) return null;
        try
        {
            using var probe = new FileStream(Path.Combine(dataDirectory, "candor.lock"), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return null; // nobody holds the lock
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (IOException)
        {
            var pidFile = Path.Combine(dataDirectory, PolicyCommand.PidFileName);
            return File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) ? pid : null;
        }
    }

    /// <summary>Socket inodes listening on <paramref name="port"/>, from /proc/net/tcp and tcp6 (Linux).</summary>
    private static IEnumerable<string> ListeningInodes(int port)
    {
        var hexPort = port.ToString("X4", CultureInfo.InvariantCulture);
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table)) continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                // local_address is ADDRESS:PORT in hex; state 0A is LISTEN; the inode is the tenth field.
                if (fields.Length > 9 && fields[1].EndsWith(":" + hexPort, StringComparison.Ordinal) && fields[3] == "0A")
                    yield return fields[9];
            }
        }
    }

    private static bool ProcessHoldsSocket(int pid, string inode)
    {
        try
        {
            var target = $"socket:[{inode}]";
            return new DirectoryInfo($"/proc/{pid}/fd").EnumerateFileSystemInfos().Any(fd => fd.LinkTarget == target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static IEnumerable<Finding> Files(ServerOptions options)
    {
        if (OperatingSystem.IsWindows()) yield break;
        var data = options.DataDirectory;
        const UnixFileMode others = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if (!Directory.Exists(data))
            yield return new(Severity.Warning, "files", $"data directory {Path.GetFullPath(data)} does not exist: the first start makes it");
        else
        {
            var mode = File.GetUnixFileMode(data);
            yield return (mode & (others | UnixFileMode.GroupWrite)) != 0
                ? new(Severity.Warning, "files", $"data directory {Path.GetFullPath(data)} has mode {Octal(mode)}: other users can reach it; chmod 0750")
                : new(Severity.Ok, "files", $"data directory {Path.GetFullPath(data)} has mode {Octal(mode)}");
        }
        var keys = new KeyFiles(options);
        if (keys.FromSetting)
        {
            yield return new(Severity.Ok, "files", $"master key comes from {keys.Describe}");
            yield break;
        }
        if (!File.Exists(keys.KeyPath))
        {
            yield return File.Exists(Path.Combine(data, SqliteStorage.FileName))
                ? new(Severity.Error, "files", $"no master key at {keys.KeyPath}, but the database exists: restore the key file from your backup")
                : new(Severity.Ok, "files", $"no master key yet: the first start makes {keys.KeyPath}");
            yield break;
        }
        var keyMode = File.GetUnixFileMode(keys.KeyPath);
        yield return (keyMode & (others | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute)) != 0
            ? new(Severity.Error, "files", $"master key {keys.KeyPath} has mode {Octal(keyMode)}: only the service user may read it; chmod 0600")
            : new(Severity.Ok, "files", $"master key {keys.KeyPath} has mode {Octal(keyMode)}");
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1ff, 8);

    private static Finding Policy(ServerOptions options)
    {
        if (options.PolicyFile is null) return new(Severity.Ok, "policy", "no policy file: no content rules");
        try
        {
            var snapshot = PolicySnapshot.Create(PolicyLoader.LoadFile(options.PolicyFile), options, options.PolicyFile);
            return new(Severity.Ok, "policy", $"{options.PolicyFile} loads: version {snapshot.Published.Version}, {snapshot.Matcher.Rules.Count} rules");
        }
        catch (PolicyException e)
        {
            return new(Severity.Error, "policy", e.Message);
        }
    }
}
