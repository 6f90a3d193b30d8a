using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>A server with its HTTP listener on, small upload limits so that tests reach them.</summary>
public sealed class UploadFixture : ServerFixture
{
    public const long MaxBytes = 4 * 1024 * 1024;
    public const long QuotaBytes = 6 * 1024 * 1024;

    protected override void Configure(ServerOptions options)
    {
        options.HttpPort = 0;
        options.UploadMaxBytes = MaxBytes;
        options.UploadQuotaBytes = QuotaBytes;
    }
}

/// <summary>HTTP File Upload (XEP-0363) over real sockets: slots over XMPP, PUT and GET over HTTP, sealed files, hostile uploads.</summary>
public sealed class UploadTests(UploadFixture server) : IClassFixture<UploadFixture>
{
    private const string Ns0363 = "urn:xmpp:http:upload:0";
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public async Task The_server_lists_the_service_whose_disco_info_names_store_file_and_the_largest_file()
    {
        await using var client = await server.OnlineUserAsync();
        var items = await client.RequestAsync("<iq type='get' to='localhost' id='{id}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.Contains(items.FirstElement!.Elements, i => i.GetAttribute("jid") == "upload.localhost");

        var info = await client.RequestAsync("<iq type='get' to='upload.localhost' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var query = info.FirstElement!;
        Assert.Contains(query.Elements, e => e.Name == "identity" && e.GetAttribute("category") == "store" && e.GetAttribute("type") == "file");
        Assert.Contains(query.Elements, e => e.Name == "feature" && e.GetAttribute("var") == Ns0363);
        var form = query.GetChild("x", Ns.DataForms)!;
        Assert.Equal(Ns0363, Field(form, "FORM_TYPE"));
        Assert.Equal(UploadFixture.MaxBytes.ToString(), Field(form, "max-file-size"));

        var policy = Encoding.UTF8.GetString(server.Host.Server.Policy.Current.Published.Json);
        Assert.Contains($"30 days after the upload, then deleted; at most {UploadFixture.MaxBytes} bytes per file and {UploadFixture.QuotaBytes} bytes per account", policy);
    }

    [Fact]
    public async Task A_file_goes_up_and_comes_back_whole_and_in_ranges()
    {
        await using var client = await server.OnlineUserAsync();
        var content = RandomNumberGenerator.GetBytes(200_000); // four chunks, the last one short
        var url = await SlotAsync(client, "photo.jpg", content.Length, "image/jpeg");
        Assert.StartsWith($"http://localhost:{server.Host.HttpPort}/upload/", url);
        Assert.True(Encoding.ASCII.GetByteCount(new Uri(url).Segments[2].TrimEnd('/')) >= 32, "the token carries at least 128 bits");

        Assert.Equal(HttpStatusCode.Created, (await PutAsync(url, content, "image/jpeg")).StatusCode);

        using var whole = await Http.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal(content, await whole.Content.ReadAsByteArrayAsync());
        Assert.Equal("image/jpeg", whole.Content.Headers.ContentType!.MediaType);
        Assert.Equal("inline", whole.Content.Headers.ContentDisposition!.DispositionType);
        Assert.Equal("nosniff", whole.Headers.GetValues("X-Content-Type-Options").Single());

        foreach (var (from, to) in new (long?, long?)[] { (65_530, 131_080), (0, 0), (199_999, null), (null, 1000), (131_072, 199_999) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Range = new RangeHeaderValue(from, to);
            using var part = await Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
            var start = from ?? content.Length - to!.Value;
            var end = from is null ? content.Length - 1 : to ?? content.Length - 1;
            Assert.Equal(content[(int)start..(int)(end + 1)], await part.Content.ReadAsByteArrayAsync());
            Assert.Equal($"bytes {start}-{end}/{content.Length}", part.Content.Headers.ContentRange!.ToString());
        }
        using var outside = new HttpRequestMessage(HttpMethod.Get, url);
        outside.Headers.Range = new RangeHeaderValue(content.Length, null);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, (await Http.SendAsync(outside)).StatusCode);
    }

    [Fact]
    public async Task A_file_larger_than_the_limit_is_refused_with_the_maximum()
    {
        await using var client = await server.OnlineUserAsync();
        var reply = await client.RequestAsync($"<iq type='get' to='upload.localhost' id='{{id}}'><request xmlns='{Ns0363}' filename='big.iso' size='{UploadFixture.MaxBytes + 1}'/></iq>");
        reply.AssertError("not-acceptable", "modify");
        var tooLarge = reply.GetChild("error", Ns.Client)!.GetChild("file-too-large", Ns0363)!;
        Assert.Equal(UploadFixture.MaxBytes.ToString(), tooLarge.GetChildText("max-file-size", Ns0363));
    }

    [Fact]
    public async Task Slots_beyond_the_accounts_quota_are_refused_and_a_request_without_size_is_bad()
    {
        await using var client = await server.OnlineUserAsync();
        await SlotAsync(client, "a.bin", UploadFixture.MaxBytes, null);
        var reply = await client.RequestAsync($"<iq type='get' to='upload.localhost' id='{{id}}'><request xmlns='{Ns0363}' filename='b.bin' size='{UploadFixture.QuotaBytes - UploadFixture.MaxBytes + 1}'/></iq>");
        reply.AssertError("resource-constraint", "wait");
        Assert.Contains("quota", reply.ToString());

        (await client.RequestAsync($"<iq type='get' to='upload.localhost' id='{{id}}'><request xmlns='{Ns0363}' filename='c.bin'/></iq>")).AssertError("bad-request");
        (await client.RequestAsync("<iq type='set' to='upload.localhost' id='{id}'><query xmlns='jabber:iq:version'/></iq>")).AssertError("service-unavailable");
    }

    [Fact]
    public async Task An_upload_larger_than_its_slot_or_of_another_type_is_refused_and_a_used_slot_cannot_be_reused()
    {
        await using var client = await server.OnlineUserAsync();
        var content = RandomNumberGenerator.GetBytes(1000);
        var url = await SlotAsync(client, "doc.pdf", content.Length, "application/pdf");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await PutAsync(url, [.. content, 1], "application/pdf")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PutAsync(url, content[..999], "application/pdf")).StatusCode);
        using (var refused = await PutAsync(url, content, "text/html"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("Content-Type", await refused.Content.ReadAsStringAsync());
        }
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync(url)).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await PutAsync(url, content, "application/pdf")).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await PutAsync(url, RandomNumberGenerator.GetBytes(1000), "application/pdf")).StatusCode);
        Assert.Equal(content, await Http.GetByteArrayAsync(url));

        var forged = url.Replace("/upload/", "/upload/A");
        Assert.Equal(HttpStatusCode.Forbidden, (await PutAsync(forged, content, "application/pdf")).StatusCode);
    }

    [Fact]
    public async Task A_path_in_the_filename_stays_a_name_and_writes_nothing_outside_the_upload_folder()
    {
        await using var client = await server.OnlineUserAsync();
        var content = Encoding.UTF8.GetBytes("root:x:0:0\n");
        var url = await SlotAsync(client, "../../../../tmp/evil\\..\\passwd", content.Length, "text/plain");
        Assert.EndsWith("/passwd", url);
        Assert.Equal(4, new Uri(url).Segments.Length);
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(url, content, "text/plain")).StatusCode);
        using var response = await Http.GetAsync(url);
        Assert.Equal("passwd", response.Content.Headers.ContentDisposition!.FileNameStar);
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition.DispositionType);
        Assert.False(File.Exists("/tmp/evil/passwd"));
        Assert.All(Directory.GetFiles(server.DataDirectory, "*passwd*", SearchOption.AllDirectories), f => Assert.Fail($"{f} was written"));
    }

    [Fact]
    public async Task An_html_or_svg_upload_is_served_as_a_download_that_no_browser_renders()
    {
        await using var client = await server.OnlineUserAsync();
        foreach (var (name, type) in new[] { ("login.html", "text/html"), ("logo.svg", "image/svg+xml"), ("page.xhtml", "application/xhtml+xml") })
        {
            var content = Encoding.UTF8.GetBytes("<html><script>alert(document.cookie)</script></html>");
            var url = await SlotAsync(client, name, content.Length, type);
            Assert.Equal(HttpStatusCode.Created, (await PutAsync(url, content, type)).StatusCode);
            using var response = await Http.GetAsync(url);
            Assert.Equal("application/octet-stream", response.Content.Headers.ContentType!.MediaType);
            Assert.Equal("attachment", response.Content.Headers.ContentDisposition!.DispositionType);
            Assert.Equal(name, response.Content.Headers.ContentDisposition.FileNameStar);
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
            var csp = response.Headers.GetValues("Content-Security-Policy").Single();
            Assert.Contains("default-src 'none'", csp);
            Assert.Contains("sandbox", csp);
        }
    }

    [Fact]
    public async Task A_slowloris_put_is_cut_off_while_another_upload_goes_through()
    {
        await using var client = await server.OnlineUserAsync();
        var url = new Uri(await SlotAsync(client, "slow.bin", 100_000, "application/octet-stream"));
        using var slow = new TcpClient();
        await slow.ConnectAsync(IPAddress.Loopback, server.Host.HttpPort);
        var stream = slow.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"PUT {url.AbsolutePath} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"));
        var trickle = Task.Run(async () =>
        {
            try
            {
                for (var i = 0; i < 60; i++)
                {
                    await stream.WriteAsync(new byte[] { 1 });
                    await Task.Delay(500);
                }
            }
            catch (IOException)
            {
            }
        });

        var content = RandomNumberGenerator.GetBytes(150_000);
        var other = await SlotAsync(client, "fast.bin", content.Length, null);
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(other, content, "application/octet-stream")).StatusCode);

        var answer = new byte[4096];
        var read = await stream.ReadAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.StartsWith("HTTP/1.1 408", Encoding.ASCII.GetString(answer, 0, read));
        await trickle.WaitAsync(TimeSpan.FromSeconds(40));
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync(url)).StatusCode);
        Assert.Equal(content, await Http.GetByteArrayAsync(other));
    }

    [Fact]
    public async Task Messages_to_the_service_are_answered_with_an_error()
    {
        await using var client = await server.OnlineUserAsync();
        await client.SendAsync("<message to='upload.localhost' id='m1'><body>hello?</body></message>");
        (await client.ExpectStanzaAsync("message", m => m.Id() == "m1")).AssertError("service-unavailable");
    }

    [Fact]
    public async Task Files_are_sealed_on_disk_survive_a_restart_and_are_swept_after_the_retention_period()
    {
        var own = await ServerFixture.StartAsync(o => o.HttpPort = 0);
        try
        {
            var marker = Encoding.ASCII.GetBytes("CANDOR-PLAINTEXT-MARKER-");
            var content = Enumerable.Repeat(marker, 10_000).SelectMany(b => b).ToArray();
            string url;
            await using (var client = await own.OnlineUserAsync())
            {
                url = await SlotAsync(client, "secret.txt", content.Length, "text/plain");
                Assert.Equal(HttpStatusCode.Created, (await PutAsync(url, content, "text/plain")).StatusCode);
            }
            await own.StopAsync();
            foreach (var file in Directory.GetFiles(own.DataDirectory, "*", SearchOption.AllDirectories))
                Assert.True(File.ReadAllBytes(file).AsSpan().IndexOf(marker[..16]) < 0, $"{file} holds uploaded bytes in plaintext");
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(own.DataDirectory, "uploads")));

            await own.InitializeAsync();
            var moved = new UriBuilder(url) { Port = own.Host.HttpPort }.Uri;
            Assert.Equal(content, await Http.GetByteArrayAsync(moved));

            // 'candor key rotate' beside the running server reseals the file; the old key is gone afterwards.
            var keys = ((SealedStorage)own.Host.Server.Storage).Keys;
            await using (var rotator = await SealedStorage.OpenAsync(new ServerOptions { DataDirectory = own.DataDirectory }))
            {
                var (from, to, resealed) = await rotator.RotateAsync(serverRunning: true, _ => { });
                Assert.True(resealed >= 1);
                for (var i = 0; i < 50 && keys.All.Count > 1; i++) await Task.Delay(100);
                Assert.Equal([to.Id], keys.All.Select(k => k.Id));
                Assert.NotEqual(from.Id, to.Id);
            }
            Assert.Equal(content, await Http.GetByteArrayAsync(moved));

            Assert.Equal(0, own.Host.Server.Uploads!.Sweep(DateTimeOffset.UtcNow.AddDays(29)));
            Assert.Equal(1, own.Host.Server.Uploads.Sweep(DateTimeOffset.UtcNow.AddDays(31)));
            Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync(moved)).StatusCode);
            Assert.Empty(Directory.GetFiles(Path.Combine(own.DataDirectory, "uploads")));
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    private static async Task<string> SlotAsync(XmppTestClient client, string filename, long size, string? type)
    {
        var typeAttribute = type is null ? "" : $" content-type='{type}'";
        var reply = await client.RequestAsync($"<iq type='get' to='upload.localhost' id='{{id}}'><request xmlns='{Ns0363}' filename='{System.Security.SecurityElement.Escape(filename)}' size='{size}'{typeAttribute}/></iq>");
        Assert.True(reply.Type() == "result", reply.ToString());
        var slot = reply.GetChild("slot", Ns0363)!;
        var put = slot.GetChild("put", Ns0363)!.GetAttribute("url")!;
        Assert.Equal(put, slot.GetChild("get", Ns0363)!.GetAttribute("url"));
        return put;
    }

    private static Task<HttpResponseMessage> PutAsync(string url, byte[] content, string type)
    {
        var body = new ByteArrayContent(content);
        body.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        return Http.PutAsync(url, body);
    }

    private static string? Field(Element form, string var) =>
        form.Elements.FirstOrDefault(f => f.GetAttribute("var") == var)?.GetChildText("value", Ns.DataForms);
}
