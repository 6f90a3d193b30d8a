using Candor.Client.Tests.Infrastructure;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>What a client test needs of a server it connects to on loopback (Candor's or Prosody).</summary>
public interface IC2sServer : IAsyncDisposable
{
    int C2sPort { get; }
    /// <summary>SHA-256 of the server's certificate, hex, for `--fingerprint`.</summary>
    string CertificateFingerprint { get; }
    /// <summary>A directory of the test's own, removed with the server.</summary>
    string DataDirectory { get; }
    /// <summary>The server's output, for assertion messages.</summary>
    string Transcript { get; }
}

/// <summary>
/// A private Prosody from Debian with PEP (Candor.Client.Tests' <see cref="ProsodyFixture"/>, domain localhost), to
/// show that Candor's client does not depend on Candor's server.
/// </summary>
public sealed class ProsodyServer : IC2sServer
{
    private readonly ProsodyFixture _prosody = new() { Modules = ["pep"] };

    public int C2sPort => _prosody.Port;
    public string CertificateFingerprint => _prosody.Fingerprint;
    public string DataDirectory => _prosody.Directory;
    public string Transcript => $"--- prosody (c2s {C2sPort}) log ---\n{_prosody.Log}\n--- end of prosody log ---";

    public static async Task<ProsodyServer> StartAsync(params (string User, string Password)[] accounts)
    {
        var server = new ProsodyServer();
        await server._prosody.InitializeAsync();
        foreach (var (user, password) in accounts) await server._prosody.CreateUserAsync(user, password);
        return server;
    }

    public async ValueTask DisposeAsync() => await _prosody.DisposeAsync();
}
