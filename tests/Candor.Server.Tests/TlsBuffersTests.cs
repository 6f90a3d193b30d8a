using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Connections;

namespace Candor.Server.Tests;

/// <summary>
/// The TLS memory saving reaches into SslStream's private state; these tests fail when a .NET update moves it,
/// and show that a connection with released buffers still carries records of every size both ways.
/// </summary>
public class TlsBuffersTests
{
    [Fact]
    public async Task Released_buffers_are_set_on_this_runtime_and_large_and_small_records_still_flow_both_ways()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var certificate = X509CertificateLoader.LoadPkcs12(selfSigned.Export(X509ContentType.Pfx), null);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        var connecting = client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        await connecting;
        listener.Stop();
        await using var server = new SslStream(accepted.GetStream());
        await using var peer = new SslStream(client.GetStream(), false, (_, _, _, _) => true);
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = SslStreamCertificateContext.Create(certificate, null, offline: true),
            }),
            peer.AuthenticateAsClientAsync("localhost"));

        Assert.True(TlsBuffers.ReleaseWhenIdle(server), "SSL_MODE_RELEASE_BUFFERS could not be set: has SslStream's private state changed?");

        foreach (var size in new[] { 1, 200, 16 * 1024, 100_000 })
        {
            var sent = RandomNumberGenerator.GetBytes(size);
            await peer.WriteAsync(sent);
            Assert.Equal(sent, await ReadExactlyAsync(server, size));
            var answer = RandomNumberGenerator.GetBytes(size);
            await server.WriteAsync(answer);
            Assert.Equal(answer, await ReadExactlyAsync(peer, size));
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int size)
    {
        var buffer = new byte[size];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return buffer;
    }
}
