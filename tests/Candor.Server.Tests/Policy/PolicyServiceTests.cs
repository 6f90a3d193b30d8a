using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Candor.Server.Hosting;
using Candor.Server.Modules.Policy;
using Microsoft.Extensions.Logging.Abstractions;

namespace Candor.Server.Tests.Policy;

/// <summary>Loading at start, reloading, and what is published.</summary>
public sealed class PolicyServiceTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-policy-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private ServerOptions Options(string? policyJson)
    {
        var options = new ServerOptions { DataDirectory = Path.Combine(_directory, "data") };
        if (policyJson is not null)
        {
            options.PolicyFile = Path.Combine(_directory, "policy.json");
            File.WriteAllText(options.PolicyFile, policyJson);
        }
        return options;
    }

    private const string Spam = """{"rules":[{"id":"spam-1","description":"Unsolicited advertising","phrases":["buy now"],"action":"reject"}]}""";

    [Fact]
    public void Without_a_file_there_are_no_rules_but_a_published_policy()
    {
        var service = new PolicyService(Options(null), NullLogger.Instance);
        Assert.True(service.Current.Matcher.IsEmpty);
        Assert.Null(service.File);
        using var document = JsonDocument.Parse(service.Current.Published.Json);
        Assert.Equal(0, document.RootElement.GetProperty("rules").GetArrayLength());
    }

    [Fact]
    public void A_bad_file_stops_the_start_and_the_status_says_why()
    {
        var options = Options("{\n\"rules\": [ {\"id\": 1} ]\n}");
        var e = Assert.Throws<PolicyException>(() => new PolicyService(options, NullLogger.Instance));
        Assert.Equal(2, e.Line);
        var status = File.ReadAllText(Path.Combine(options.DataDirectory, PolicyService.StatusFileName));
        Assert.Contains("\"ok\":false", status);
    }

    [Fact]
    public void Reload_with_a_broken_file_keeps_the_policy_in_force()
    {
        var options = Options(Spam);
        var service = new PolicyService(options, NullLogger.Instance);
        var before = service.Current;

        File.WriteAllText(options.PolicyFile!, "{\"rules\": [\n  {\"id\": \"x\", \"description\": \"d\", \"phrases\": [\"y\"], \"action\": \"drop\"}\n]}");
        var result = service.Reload();

        Assert.False(result.Ok);
        Assert.Contains("line 2", result.Error);
        Assert.Same(before, service.Current);
        Assert.Equal(before.Published.Digest, result.Digest);
        PolicyMatches? matches = null;
        service.Current.Matcher.Match("buy now", PolicyFields.Body, ref matches);
        Assert.Equal("spam-1", service.Current.Matcher.Decide(matches, true)?.Id);
        Assert.Contains("\"ok\":false", File.ReadAllText(Path.Combine(options.DataDirectory, PolicyService.StatusFileName)));
    }

    [Fact]
    public void Reload_swaps_in_the_new_version()
    {
        var options = Options(Spam);
        var service = new PolicyService(options, NullLogger.Instance);
        var before = service.Current.Published.Digest;

        Assert.False(service.Reload().Changed);
        File.WriteAllText(options.PolicyFile!, """{"version":"2","rules":[{"id":"spam-2","description":"More spam","phrases":["cheap pills"]}]}""");
        var result = service.Reload();

        Assert.True(result.Ok);
        Assert.True(result.Changed);
        Assert.Equal("2", result.Version);
        Assert.NotEqual(before, result.Digest);
        Assert.Equal("spam-2", Assert.Single(service.Current.Matcher.Rules).Id);
        Assert.Contains("\"ok\":true", File.ReadAllText(Path.Combine(options.DataDirectory, PolicyService.StatusFileName)));
    }

    [Fact]
    public void The_digest_is_the_sha256_of_the_served_bytes_and_stable()
    {
        var options = Options(Spam);
        var a = PublishedPolicy.Create(PolicyLoader.LoadFile(options.PolicyFile!), options);
        var b = PublishedPolicy.Create(PolicyLoader.LoadFile(options.PolicyFile!), options);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(a.Json)), a.Digest);
        Assert.Equal(a.Digest, b.Digest);
        Assert.StartsWith("sha256-", a.Version);
    }

    [Fact]
    public void The_document_publishes_rules_retention_logging_and_the_encryption_statement()
    {
        var options = Options(Spam);
        options.MaxOfflineMessages = 77;
        var published = PublishedPolicy.Create(PolicyLoader.LoadFile(options.PolicyFile!), options);
        using var document = JsonDocument.Parse(published.Json);
        var root = document.RootElement;
        Assert.Equal(PublishedPolicy.FormatUri, root.GetProperty("format").GetString());
        var rule = root.GetProperty("rules")[0];
        Assert.Equal("spam-1", rule.GetProperty("id").GetString());
        Assert.Equal("reject", rule.GetProperty("action").GetString());
        Assert.Equal("buy now", rule.GetProperty("phrases")[0].GetString());
        Assert.Contains("cannot be read", root.GetProperty("content").GetProperty("encryptedContent").GetString());
        Assert.Contains(root.GetProperty("retention").EnumerateArray(), r => r.GetProperty("kept").GetString()!.Contains("at most 77 per account"));
        Assert.Contains(root.GetProperty("logging").GetProperty("neverLogged").EnumerateArray(), r => r.GetString()!.Contains("message bodies"));
        Assert.Contains(root.GetProperty("logging").GetProperty("logged").EnumerateArray(), r => r.GetString()!.Contains("IP address"));
    }

    [Fact]
    public void The_html_page_escapes_what_the_file_says()
    {
        var options = Options("""{"rules":[{"id":"x<y","description":"<script>alert(1)</script>","phrases":["a&b"]}]}""");
        var html = PublishedPolicy.Create(PolicyLoader.LoadFile(options.PolicyFile!), options).Html;
        Assert.DoesNotContain("<script>", html);
        Assert.Contains("&lt;script&gt;", html);
        Assert.Contains("a&amp;b", html);
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("*/*", false)]
    [InlineData("application/json", false)]
    [InlineData("text/html", true)]
    [InlineData("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true)]
    [InlineData("application/json, text/html;q=0.5", false)]
    public void Content_negotiation(string? accept, bool html)
    {
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        if (accept is not null) context.Request.Headers.Accept = accept;
        Assert.Equal(html, PolicyModule.PrefersHtml(context.Request));
    }

    [Fact]
    public async Task Concurrent_matching_during_reloads_sees_one_version_at_a_time()
    {
        var options = Options(Spam);
        var service = new PolicyService(options, NullLogger.Instance);
        var done = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            var checks = 0;
            do
            {
                var snapshot = service.Current;
                PolicyMatches? matches = null;
                snapshot.Matcher.Match("buy now", PolicyFields.Body, ref matches);
                Assert.NotNull(snapshot.Matcher.Decide(matches, true));
                checks++;
            }
            while (Volatile.Read(ref done) == 0);
            return checks;
        })).ToArray();
        for (var i = 0; i < 20; i++)
        {
            File.WriteAllText(options.PolicyFile!, i % 2 == 0 ? Spam : Spam.Replace("spam-1", "spam-" + i, StringComparison.Ordinal));
            service.Reload();
        }
        Volatile.Write(ref done, 1);
        Assert.All(await Task.WhenAll(readers), n => Assert.True(n > 0));
    }
}
