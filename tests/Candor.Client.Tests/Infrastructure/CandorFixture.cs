using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Hosting;
using Candor.Xmpp;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>An in-process Candor server on loopback with free ports and a temporary data directory.</summary>
public sealed class CandorFixture : IAsyncLifetime
{
    private CandorHost? _host;
    private int _users;

    public string DataDirectory { get; } = Directory.CreateTempSubdirectory("candor-client-tests-").FullName;
    public CandorHost Host => _host ?? throw new InvalidOperationException("not started");
    public int C2sPort => Host.C2sPort;
    public int TlsPort => Host.TlsPort;
    /// <summary>SHA-256 of the self-signed certificate the server made on first start.</summary>
    public string Fingerprint { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _host = await CandorHost.StartAsync(new ServerOptions
        {
            Domain = "localhost", DataDirectory = DataDirectory, Bind = "127.0.0.1", C2sPort = 0, TlsPort = 0, S2sPort = -1, HttpPort = -1, HttpsPort = -1,
        }, _ => { });
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(DataDirectory, "tls", "localhost.crt")));
        Fingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }

    /// <summary>A new account with a unique name: (jid, password).</summary>
    public async Task<(Jid Jid, string Password)> CreateUserAsync(string prefix = "user")
    {
        var name = $"{prefix}{Interlocked.Increment(ref _users)}";
        var password = $"{name}-secret";
        Assert.True(await Host.Server.Accounts.CreateAsync(name, password));
        return (Jid.Parse($"{name}@localhost"), password);
    }

    public XmppClientOptions Options(Jid jid, string password, bool directTls = false) => new()
    {
        Jid = jid,
        Password = password,
        Host = "127.0.0.1",
        Port = directTls ? TlsPort : C2sPort,
        TlsMode = directTls ? TlsMode.DirectTls : TlsMode.StartTls,
        CertificateFingerprint = Fingerprint,
        ConnectTimeout = TimeSpan.FromSeconds(20),
        RequestTimeout = TimeSpan.FromSeconds(10),
    };

    public async Task<XmppClient> ConnectAsync(Jid jid, string password)
    {
        var client = new XmppClient(Options(jid, password));
        await client.ConnectAsync();
        return client;
    }

    public async Task DisposeAsync()
    {
        if (_host is not null) await _host.StopAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
