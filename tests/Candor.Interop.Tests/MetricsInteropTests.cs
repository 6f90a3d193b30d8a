using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// /metrics of a real server, scraped and parsed with prometheus_client's parser (scripts/scrape_metrics.py)
/// before and after a scripted session (slixmpp's two_users.py, a wrong password, a message the policy refuses,
/// a stream that is not XML): every counter the session touches moves, the gauges see an open connection.
/// </summary>
[Trait("Category", "Interop")]
public sealed class MetricsInteropTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-metrics-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private sealed record Sample(string Name, Dictionary<string, string> Labels, double Value);

    private sealed class Scrape(List<Sample> samples)
    {
        public double Sum(string name, params (string Label, string Value)[] labels) =>
            samples.Where(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Label) == l.Value)).Sum(s => s.Value);

        public bool Has(string name) => samples.Any(s => s.Name == name);

        public string Describe(string prefix) => string.Join("\n", samples.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal))
            .Select(s => $"{s.Name}{{{string.Join(",", s.Labels.Select(l => $"{l.Key}={l.Value}"))}}} {s.Value}"));
    }

    private Task<Scrape> ScrapeAsync(CandorServer server) => ScrapeAsync(server.HttpPort, server.Transcript);

    private static async Task<Scrape> ScrapeAsync(int httpPort, string transcript = "")
    {
        var result = await ChildProcess.RunAsync(Tools.Python, [Tools.Script("scrape_metrics.py"), $"http://{CandorServer.Host}:{httpPort}/metrics"],
            TimeSpan.FromSeconds(60));
        Assert.True(result.Succeeded, $"scrape failed\n{result.Describe()}\n{transcript}");
        var samples = new List<Sample>();
        foreach (var line in result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!line.StartsWith('{')) continue;
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            samples.Add(new Sample(root.GetProperty("name").GetString()!,
                root.GetProperty("labels").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
                root.GetProperty("value").GetDouble()));
        }
        Assert.True(samples.Count > 20, $"too few samples parsed\n{result.Output}");
        return new Scrape(samples);
    }

    [Fact]
    public async Task Counters_move_with_a_scripted_session_and_gauges_see_it()
    {
        await Tools.RequireSlixmppAsync();
        var policy = Path.Combine(_directory, "policy.json");
        File.WriteAllText(policy, """{"rules":[{"id":"spam-9","description":"Advertising","phrases":["buy now"]}]}""");
        await using var server = await CandorServer.StartAsync(output, ["--policy", policy]);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var before = await ScrapeAsync(server);

        var script = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("two_users.py"), CandorServer.Host, server.C2sPort.ToString(),
             "alice@localhost", "alice-secret", "bob@localhost", "bob-secret", "--mechanism", "SCRAM-SHA-256", "--timeout", "15"],
            TimeSpan.FromMinutes(4));
        Assert.True(script.Succeeded, $"two_users.py failed\n{script.Describe()}\n{server.Transcript}");
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var wrong = await SealedStorageInteropTests.ConnectAsync(server, "bob@localhost/desk", "not-the-password");
        });
        using (var raw = new TcpClient())
        {
            await raw.ConnectAsync(CandorServer.Host, server.C2sPort);
            await raw.GetStream().WriteAsync(Encoding.ASCII.GetBytes("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'><<"));
            var buffer = new byte[8192];
            var answer = new StringBuilder();
            while (!answer.ToString().Contains("</stream:stream>") && await raw.GetStream().ReadAsync(buffer) is var n and > 0)
                answer.Append(Encoding.UTF8.GetString(buffer, 0, n));
            Assert.Contains("not-well-formed", answer.ToString());
        }

        await using var alice = await SealedStorageInteropTests.ConnectAsync(server, "alice@localhost/metrics", "alice-secret");
        await alice.SendMessageAsync(Jid.Parse("bob@localhost"), "please buy now", requestReceipt: false);
        await alice.PingAsync();
        var after = await ScrapeAsync(server);

        void Moved(string name, double atLeast, params (string, string)[] labels)
        {
            var delta = after.Sum(name, labels) - before.Sum(name, labels);
            Assert.True(delta >= atLeast, $"{name}{{{string.Join(",", labels)}}} moved by {delta}, expected at least {atLeast}");
        }
        Moved("candor_stanzas_received_total", 4, ("candor_stanza_kind", "message"));
        Moved("candor_stanzas_received_total", 4, ("candor_stanza_kind", "presence"));
        Moved("candor_stanzas_received_total", 4, ("candor_stanza_kind", "iq"));
        Moved("candor_stanzas_sent_total", 4, ("candor_stanza_kind", "message"));
        Moved("candor_stanzas_sent_total", 4, ("candor_stanza_kind", "presence"));
        Moved("candor_logins_total", 3, ("candor_sasl_mechanism", "SCRAM-SHA-256"));
        Moved("candor_login_failures_total", 1, ("error_type", "not-authorized"));
        Moved("candor_policy_refusals_total", 1, ("candor_policy_rule", "spam-9"));
        Moved("candor_stanza_errors_total", 1, ("error_type", "policy-violation"));
        Moved("candor_stream_errors_total", 1, ("error_type", "not-well-formed"));
        Moved("db_client_operation_duration_seconds_count", 5, ("db_system_name", "sqlite"));
        Assert.True(after.Sum("candor_connections", ("candor_transport", "tcp")) >= 1, "alice's open connection is not counted");
        Assert.True(after.Sum("candor_sessions", ("candor_transport", "tcp")) >= 1, "alice's session is not counted");
        Assert.True(after.Has("candor_outbound_queue_length"), "no outbound queue gauge");
        Assert.True(after.Sum("dotnet_gc_heap_total_allocated_bytes_total") > 0, "no GC figures");
        Assert.True(after.Sum("dotnet_process_memory_working_set_bytes") > 0, "no memory figures");
        Assert.Equal(0, after.Sum("candor_policy_refusals_total", ("candor_policy_rule", "please buy now")));

        // The archive counts are refreshed at most every 30 s: the one taken at the first scrape may still stand.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(45);
        var last = after;
        while (last.Sum("candor_storage_archive_items", ("candor_store", "archive")) < 4 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(2000);
            last = await ScrapeAsync(server);
        }
        var archived = last.Sum("candor_storage_archive_items", ("candor_store", "archive"));
        Assert.True(archived >= 4, $"the message archive holds {archived} items by the gauge, the session archived at least 4");

        // Every series the Grafana dashboard charts exists in a real scrape.
        foreach (var name in DashboardMetricNames())
            Assert.True(last.Has(name), $"docs/grafana-dashboard.json charts {name}, which /metrics does not serve");
    }

    /// <summary>
    /// Four Candor servers federating over loopback: a.test and b.test hold certificates of a CA both trust (SASL
    /// EXTERNAL on a.test's stream, which carries both ways), c.test and d.test have none (dialback between them), and b.test refuses c.test's dialback
    /// (a certificate is required there). The s2s series of /metrics count each of these, from both ends.
    /// </summary>
    [Fact]
    public async Task S2s_connections_stanzas_and_authentication_outcomes_are_counted_at_both_ends()
    {
        using var ca = new Server.Tests.Harness.TestCa();
        await using var a = await StartDomainAsync("a.test", ca);
        await using var b = await StartDomainAsync("b.test", ca);
        await using var c = await StartDomainAsync("c.test", null);
        await using var d = await StartDomainAsync("d.test", null);
        a.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{b.S2sPort}";
        b.Server.Options.S2sRoutes = $"a.test=127.0.0.1:{a.S2sPort},c.test=127.0.0.1:{c.S2sPort}";
        c.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{b.S2sPort},d.test=127.0.0.1:{d.S2sPort}";
        d.Server.Options.S2sRoutes = $"c.test=127.0.0.1:{c.S2sPort}";

        await using var alice = await OnlineAsync(a, "alice");
        await using var bob = await OnlineAsync(b, "bob");
        await using var carol = await OnlineAsync(c, "carol");
        await using var dave = await OnlineAsync(d, "dave");
        await DeliverAsync(alice, bob, "a to b");
        await DeliverAsync(bob, alice, "b to a");
        await DeliverAsync(carol, dave, "c to d");
        await carol.SendMessageAsync(bob.BoundJid!.Bare, "c to b, refused", requestReceipt: false);

        static void Expect(Scrape at, double expected, string name, params (string, string)[] labels) =>
            Assert.True(at.Sum(name, labels) == expected, $"{name}{{{string.Join(",", labels)}}} is {at.Sum(name, labels)}, expected {expected}\n{at.Describe("candor_s2s")}");
        static (string, string) Method(string m) => ("candor_s2s_method", m);
        static (string, string) Direction(string d) => ("candor_s2s_direction", d);
        // The refusal of c.test comes after the messages have arrived, and d.test closes the stream it opened to
        // verify c.test's key in the background: scraped until both have happened, or 30 s.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        Scrape atB, atC, atD;
        while (true)
        {
            (atB, atC, atD) = (await ScrapeAsync(b.HttpPort), await ScrapeAsync(c.HttpPort), await ScrapeAsync(d.HttpPort));
            var settled = atC.Sum("candor_s2s_authentication_failures_total") >= 1 && atD.Sum("candor_s2s_connections", Direction("outgoing")) == 0;
            if (settled || DateTime.UtcNow > deadline) break;
            await Task.Delay(500);
        }

        // a.test's stream to b.test is bidirectional (XEP-0288): b.test answers over it and opens none of its own.
        Expect(atB, 1, "candor_s2s_authentications_total", Method("sasl_external"), Direction("incoming"));
        Expect(atB, 0, "candor_s2s_authentications_total", Method("sasl_external"), Direction("outgoing"));
        Expect(atB, 1, "candor_s2s_authentication_failures_total", Method("dialback"), Direction("incoming"), ("error_type", "not-authorized"));
        Expect(atC, 1, "candor_s2s_authentication_failures_total", Method("dialback"), Direction("outgoing"), ("error_type", "not-authorized"));
        Expect(atC, 1, "candor_s2s_authentications_total", Method("dialback"), Direction("outgoing"));
        Expect(atD, 1, "candor_s2s_authentications_total", Method("dialback"), Direction("incoming"));
        Expect(atD, 0, "candor_s2s_authentication_failures_total");

        Expect(atB, 1, "candor_s2s_stanzas_received_total", ("candor_stanza_kind", "message"));
        Expect(atB, 1, "candor_s2s_stanzas_sent_total", ("candor_stanza_kind", "message"));
        Expect(atD, 1, "candor_s2s_stanzas_received_total", ("candor_stanza_kind", "message"));
        Expect(atD, 0, "candor_s2s_stanzas_sent_total", ("candor_stanza_kind", "message"));
        // b.test keeps a.test's stream, which carries both ways; d.test has c.test's incoming stream, and only
        // opened one of its own for the dialback verification, which it closed.
        Expect(atB, 0, "candor_s2s_connections", Direction("outgoing"));
        Assert.True(atB.Sum("candor_s2s_connections", Direction("incoming")) >= 1, "b.test counts no incoming s2s stream\n" + atB.Describe("candor_s2s"));
        Expect(atD, 1, "candor_s2s_connections", Direction("incoming"));
        Expect(atD, 0, "candor_s2s_connections", Direction("outgoing"));
    }

    private static async Task DeliverAsync(Client.XmppClient from, Client.XmppClient to, string body)
    {
        var received = SealedStorageInteropTests.Received(to, body);
        await from.SendMessageAsync(to.BoundJid!.Bare, body, requestReceipt: false);
        await received.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>A server of <paramref name="domain"/> in this process, on free loopback ports, with a certificate of <paramref name="ca"/> if given.</summary>
    private async Task<Server.Hosting.CandorHost> StartDomainAsync(string domain, Server.Tests.Harness.TestCa? ca)
    {
        var options = new Server.Hosting.ServerOptions
        {
            Domain = domain, DataDirectory = Path.Combine(_directory, domain), Bind = CandorServer.Host,
            C2sPort = 0, TlsPort = -1, S2sPort = 0, HttpPort = 0, HttpsPort = -1, MucDomain = "",
        };
        if (ca is not null)
        {
            (options.CertificateFile, options.KeyFile) = ca.IssueFiles(domain);
            options.S2sTrustedCaFile = ca.RootFile;
        }
        return await Server.Hosting.CandorHost.StartAsync(options, announce: output.WriteLine);
    }

    private static async Task<Client.XmppClient> OnlineAsync(Server.Hosting.CandorHost host, string name)
    {
        Assert.True(await host.Server.Accounts.CreateAsync(name, "pw-" + name));
        var domain = host.Server.Domain.Domain;
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(
            File.ReadAllText(host.Server.Options.CertificateFile ?? Path.Combine(host.Server.Options.DataDirectory, "tls", domain + ".crt")));
        var client = new Client.XmppClient(new Client.XmppClientOptions
        {
            Jid = Jid.Parse($"{name}@{domain}/metrics"),
            Password = "pw-" + name,
            Host = CandorServer.Host,
            Port = host.C2sPort,
            CertificateFingerprint = certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256),
            AutoReceipts = false,
        });
        await client.ConnectAsync();
        await client.SendPresenceAsync();
        return client;
    }

    private static IEnumerable<string> DashboardMetricNames()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "docs", "grafana-dashboard.json"))) directory = directory.Parent;
        Assert.True(directory is not null, "docs/grafana-dashboard.json not found above the test output");
        using var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory!.FullName, "docs", "grafana-dashboard.json")));
        var names = new SortedSet<string>();
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
            foreach (var target in panel.GetProperty("targets").EnumerateArray())
                foreach (System.Text.RegularExpressions.Match match in System.Text.RegularExpressions.Regex.Matches(target.GetProperty("expr").GetString()!, @"\b(?:candor|dotnet|db)_[a-z_]+(?=\{)"))
                    names.Add(match.Value);
        Assert.True(names.Count >= 10, string.Join(", ", names));
        return names;
    }

    [Fact]
    public async Task The_https_listener_refuses_metrics_and_the_setting_turns_them_off()
    {
        await using var server = await CandorServer.StartAsync(output, [], new Dictionary<string, string?> { ["CANDOR__METRICSALLOW"] = "192.0.2.0/24, 2001:db8::7" });
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler);
        var https = await http.GetAsync($"https://{CandorServer.Host}:{server.HttpsPort}/metrics");
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, https.StatusCode);
        Assert.Contains("HTTP listener only", await https.Content.ReadAsStringAsync());
        var plain = await http.GetAsync($"http://{CandorServer.Host}:{server.HttpPort}/metrics");
        Assert.Equal(System.Net.HttpStatusCode.OK, plain.StatusCode);

        await using var off = await CandorServer.StartAsync(output, [], new Dictionary<string, string?> { ["CANDOR__METRICS"] = "false" });
        // The c2s port opens first; the HTTP listener is bound once the server has printed its banner.
        for (var waited = 0; !off.Output.Contains("Stop with Ctrl+C") && waited < 300; waited++) await Task.Delay(100);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync($"http://{CandorServer.Host}:{off.HttpPort}/metrics")).StatusCode);
    }
}
