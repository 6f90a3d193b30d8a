using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Connections;
using Xunit.Abstractions;

namespace Candor.Server.Tests;

/// <summary>
/// The TLS memory saving reaches into SslStream's private state; these tests fail when a .NET update moves it,
/// and show that a connection with released buffers still carries records of every size both ways.
/// </summary>
public class TlsBuffersTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Released_buffers_are_set_on_this_runtime_and_large_and_small_records_still_flow_both_ways()
    {
        await using var pair = await TlsPair.StartAsync();

        Assert.True(TlsBuffers.ReleaseWhenIdle(pair.Server), "SSL_MODE_RELEASE_BUFFERS could not be set: has SslStream's private state changed?");

        foreach (var size in new[] { 1, 200, 16 * 1024, 100_000 })
            await pair.ExchangeAsync(size);
    }

    [Fact]
    public async Task The_BIO_buffers_are_given_back_when_neither_side_is_inside_SslStream_and_records_still_flow()
    {
        await using var pair = await TlsPair.StartAsync();
        var idle = new TlsIdleMemory();
        Assert.True(idle.Bind(pair.Server), "the memory BIOs could not be reached: has SslStream's private state changed?");

        foreach (var size in new[] { 100_000, 1, 16 * 1024, 200 })
        {
            await pair.ExchangeAsync(size);
            var released = idle.TryRelease();
            output.WriteLine($"{size}-byte records both ways: {released} bytes of BIO buffers given back");
            Assert.True(size < 16 * 1024 ? released > 0 : released >= 16 * 1024, $"{released} bytes given back after {size}-byte records both ways");
            Assert.Equal(0, idle.TryRelease());
        }

        idle.Enter(TlsIdleMemory.Writing);
        await pair.ExchangeAsync(5000);
        Assert.Equal(0, idle.TryRelease());
        idle.Exit(TlsIdleMemory.Writing);
        idle.Enter(TlsIdleMemory.Reading);
        Assert.Equal(0, idle.TryRelease());
        idle.Exit(TlsIdleMemory.Reading);
        Assert.True(idle.TryRelease() > 5000);
        await pair.ExchangeAsync(100_000);
    }

    internal static async Task<byte[]> ReadExactlyAsync(Stream stream, int size)
    {
        var buffer = new byte[size];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return buffer;
    }
}

/// <summary>A server and a client SslStream over loopback TCP.</summary>
internal sealed class TlsPair(TcpClient accepted, TcpClient client, SslStream server, SslStream peer, X509Certificate2 certificate) : IAsyncDisposable
{
    public SslStream Server => server;
    public SslStream Peer => peer;

    public static async Task<TlsPair> StartAsync()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificate = X509CertificateLoader.LoadPkcs12(selfSigned.Export(X509ContentType.Pfx), null);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        var connecting = client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var accepted = await listener.AcceptTcpClientAsync();
        await connecting;
        listener.Stop();
        var server = new SslStream(accepted.GetStream());
        var peer = new SslStream(client.GetStream(), false, (_, _, _, _) => true);
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = SslStreamCertificateContext.Create(certificate, null, offline: true),
            }),
            peer.AuthenticateAsClientAsync("localhost"));
        return new TlsPair(accepted, client, server, peer, certificate);
    }

    /// <summary>Random bytes from the client to the server, then as many back.</summary>
    public async Task ExchangeAsync(int size)
    {
        var sent = RandomNumberGenerator.GetBytes(size);
        await peer.WriteAsync(sent);
        Assert.Equal(sent, await TlsBuffersTests.ReadExactlyAsync(server, size));
        var answer = RandomNumberGenerator.GetBytes(size);
        await server.WriteAsync(answer);
        Assert.Equal(answer, await TlsBuffersTests.ReadExactlyAsync(peer, size));
    }

    public async ValueTask DisposeAsync()
    {
        await server.DisposeAsync();
        await peer.DisposeAsync();
        accepted.Dispose();
        client.Dispose();
        certificate.Dispose();
    }
}
