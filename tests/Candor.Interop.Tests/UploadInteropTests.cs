using System.Net;
using System.Text;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>HTTP File Upload (XEP-0363) with slixmpp's xep_0363 plugin against a real <c>candor serve</c>.</summary>
public sealed class UploadInteropTests(ITestOutputHelper output)
{
    /// <summary>
    /// scripts/http_upload.py finds the service, uploads over HTTPS (verifying the server's certificate) and downloads the
    /// file; after the server stops no byte of it is on disk in plaintext, and after a restart the same URL (on the new
    /// port) still serves it.
    /// </summary>
    [Fact]
    public async Task Slixmpp_uploads_and_downloads_a_file_that_is_sealed_on_disk_and_served_after_a_restart()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("ursula@localhost", "ursula-secret");
        var certificate = Path.Combine(server.DataDirectory, "tls", "localhost.crt");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("http_upload.py"), CandorServer.Host, server.C2sPort.ToString(), "ursula@localhost/files", "ursula-secret"],
            TimeSpan.FromMinutes(2), new Dictionary<string, string?> { ["SSL_CERT_FILE"] = certificate });
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"http_upload.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
        var url = new Uri(result.Output.Split('\n').Single(l => l.StartsWith("URL ", StringComparison.Ordinal))[4..].Trim());
        Assert.Equal($"https://localhost:{server.HttpsPort}", url.GetLeftPart(UriPartial.Authority));

        await server.StopAsync();
        var marker = Encoding.ASCII.GetBytes("CANDOR-UPLOAD-PLAINTEXT-");
        foreach (var file in Directory.GetFiles(server.DataDirectory, "*", SearchOption.AllDirectories))
            Assert.True(File.ReadAllBytes(file).AsSpan().IndexOf(marker) < 0, $"{file} holds uploaded bytes in plaintext");

        await server.StartAsync();
        var fingerprint = server.CertificateFingerprint;
        using var http = new HttpClient(new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert!.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256) == fingerprint,
        });
        using var response = await http.GetAsync(new UriBuilder(url) { Port = server.HttpsPort }.Uri);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(8000 * marker.Length, body.Length);
        Assert.True(body.AsSpan(0, marker.Length).SequenceEqual(marker));
        Assert.Equal("image/png", response.Content.Headers.ContentType!.MediaType);
    }
}
