using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Client;
using Candor.Server.Hosting;
using Candor.Xmpp;

namespace Candor.Server.Tests.Harness;

/// <summary>
/// A Candor server started in-process on free loopback ports with its own temporary data directory.
/// Used as a class fixture (one server per test class; tests create their own users) or directly with
/// <see cref="StartAsync"/> for a test that needs its own server or options.
/// </summary>
public class ServerFixture : IAsyncLifetime
{
    private static int _users;
    private CandorHost? _host;

    public string DataDirectory { get; } = Directory.CreateTempSubdirectory("candor-srvtests-").FullName;
    public CandorHost Host => _host ?? throw new InvalidOperationException("not started");
    public int C2sPort => Host.C2sPort;
    public int TlsPort => Host.TlsPort;
    public string DatabasePath => Path.Combine(DataDirectory, "candor.db");
    /// <summary>SHA-256 of the self-signed certificate the server made on start, pinned by library clients.</summary>
    public string Fingerprint { get; private set; } = "";

    /// <summary>Options for this server; override to change them.</summary>
    protected virtual void Configure(ServerOptions options)
    {
    }

    /// <summary>Options that take a wait to make (a database), applied after <see cref="Configure"/>.</summary>
    protected virtual Task ConfigureAsync(ServerOptions options) => Task.CompletedTask;

    public static async Task<ServerFixture> StartAsync(Action<ServerOptions>? configure = null)
    {
        var fixture = new ConfiguredFixture(configure);
        await fixture.InitializeAsync();
        return fixture;
    }

    public async Task InitializeAsync()
    {
        var options = new ServerOptions
        {
            Domain = "localhost",
            DataDirectory = DataDirectory,
            Bind = "127.0.0.1",
            C2sPort = 0,
            TlsPort = 0,
            S2sPort = -1,
            HttpPort = -1, HttpsPort = -1,
        };
        Configure(options);
        await ConfigureAsync(options);
        _host = await CandorHost.StartAsync(options, announce: _ => { });
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(options.DataDirectory, "tls", "localhost.crt")));
        Fingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }

    /// <summary>Creates an account with a unique name; its password is "pw-" + name.</summary>
    public async Task<string> CreateUserAsync(string prefix = "user")
    {
        var name = $"{prefix}{Interlocked.Increment(ref _users)}";
        Assert.True(await Host.Server.Accounts.CreateAsync(name, Password(name)));
        return name;
    }

    public static string Password(string user) => "pw-" + user;

    /// <summary>A bound session of <paramref name="user"/>.</summary>
    public Task<XmppTestClient> LoginAsync(string user, string? resource = null) =>
        XmppTestClient.LoginAsync(C2sPort, user, Password(user), resource);

    /// <summary>A new user, logged in and available (initial presence sent).</summary>
    public async Task<XmppTestClient> OnlineUserAsync(string prefix = "user", string? resource = null, int? priority = null)
    {
        var client = await LoginAsync(await CreateUserAsync(prefix), resource);
        await client.SendPresenceAsync(priority);
        return client;
    }

    public static Jid JidOf(string user) => Jid.Parse(user + "@localhost");

    /// <summary>
    /// A bound session of <paramref name="user"/> through Candor.Client (STARTTLS, the certificate pinned, no presence
    /// sent), its events recorded from the start for <see cref="LibraryClientExtensions.ExpectAsync"/>. Login notices are
    /// set aside unless <paramref name="loginNotices"/>, as they arrive whenever another session of the account logs in.
    /// </summary>
    public async Task<XmppClient> ClientAsync(string user, string? resource = null, bool loginNotices = false)
    {
        var client = new XmppClient(new XmppClientOptions
        {
            Jid = resource is null ? JidOf(user) : JidOf(user).WithResource(resource),
            Password = Password(user),
            Host = "127.0.0.1",
            Port = C2sPort,
            CertificateFingerprint = Fingerprint,
            // Receipts would be traffic the tests did not ask for.
            AutoReceipts = false,
            ConnectTimeout = TimeSpan.FromSeconds(20),
            RequestTimeout = LibraryClientExtensions.Timeout,
        });
        client.RecordEvents(loginNotices);
        await client.ConnectAsync();
        return client;
    }

    /// <summary>A new user through Candor.Client, available (initial presence sent and processed).</summary>
    public async Task<XmppClient> OnlineClientAsync(string prefix = "user", string? resource = null, int? priority = null)
    {
        var client = await ClientAsync(await CreateUserAsync(prefix), resource);
        await client.BecomeAvailableAsync(priority);
        return client;
    }

    public async Task StopAsync()
    {
        if (_host is not null) await _host.StopAsync();
    }

    /// <summary>Stops the server and starts it again on the same data directory (on new ports): what survives a restart.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class ConfiguredFixture(Action<ServerOptions>? configure) : ServerFixture
    {
        protected override void Configure(ServerOptions options) => configure?.Invoke(options);
    }
}
