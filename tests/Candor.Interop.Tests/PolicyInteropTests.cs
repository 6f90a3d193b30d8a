using System.Security.Cryptography;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// The published content policy (issue 6) against a real <c>candor serve --policy FILE</c>, driven by slixmpp
/// (scripts/policy_check.py) and the <c>candor policy</c> commands.
/// </summary>
[Trait("Category", "Interop")]
public sealed class PolicyInteropTests(ITestOutputHelper output) : IDisposable
{
    private const string Policy = """
        {
          "version": "interop-1",
          "rules": [
            { "id": "spam-1", "description": "Unsolicited advertising", "phrases": ["buy now"], "action": "reject" },
            { "id": "cold-1", "description": "Investment pitches from strangers", "phrases": ["crypto"], "whose": "strangers" },
            { "id": "ru-1", "description": "Реклама", "phrases": ["купить сейчас"] },
            { "id": "cjk-1", "description": "広告", "phrases": ["立即购买", "カイタイ"] },
            { "id": "sep-1", "description": "Spelled-out spam", "phrases": ["spammer"], "ignoreSeparators": true }
          ]
        }
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("candor-policy-interop-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string WritePolicy(string name, string json)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, json);
        return path;
    }

    private async Task<CandorServer> StartAsync(string policyFile, bool underNohup = false)
    {
        await Tools.RequireSlixmppAsync();
        var server = await CandorServer.StartAsync(output, ["--policy", policyFile], underNohup: underNohup);
        foreach (var name in new[] { "alice", "bob", "carol" })
            await server.AddUserAsync($"{name}@localhost", $"{name}-secret");
        return server;
    }

    private async Task<ProcessResult> ScriptAsync(CandorServer server, params string[] arguments)
    {
        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("policy_check.py"), CandorServer.Host, server.C2sPort.ToString(), .. arguments],
            TimeSpan.FromMinutes(4));
        output.WriteLine(result.Describe());
        return result;
    }

    [Fact]
    public async Task Refusals_are_told_contacts_pass_normalization_matches_and_the_digest_is_announced()
    {
        await using var server = await StartAsync(WritePolicy("policy.json", Policy));

        var result = await ScriptAsync(server, "full", "--timeout", "15");

        Assert.True(result.Succeeded, $"policy_check.py full failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
        // Refusals are logged by rule and addresses, never with the text.
        Assert.Contains("refused by policy rule spam-1", server.Output);
        Assert.DoesNotContain("BUY NOW", server.Output);
    }

    /// <summary>
    /// `nohup candor serve &amp;` starts the server with SIGHUP ignored, which .NET then never delivers: the reload
    /// found a deaf server ("did not report a reload within 10 s") until serve took the signal back.
    /// </summary>
    [Fact]
    public async Task A_server_started_under_nohup_reloads_its_policy_on_request()
    {
        var file = WritePolicy("policy.json", Policy);
        await using var server = await StartAsync(file, underNohup: true);

        File.WriteAllText(file, """{"rules":[{"id":"spam-2","description":"Pills","phrases":["cheap pills"]}]}""");
        var reload = await server.RunCliAsync("policy", "reload");
        output.WriteLine(reload.Describe());
        Assert.True(reload.Succeeded, $"reload failed\n{reload.Describe()}\n{server.Transcript}");
        Assert.Contains("Policy changed from interop-1", server.Output);
        var changed = await ScriptAsync(server, "reject", "--text", "CHEAP pills here", "--rule", "spam-2");
        Assert.True(changed.Succeeded, $"the new policy is not in force\n{changed.Describe()}\n{server.Transcript}");
    }

    [Fact]
    public async Task Reload_with_a_broken_file_keeps_the_old_policy_and_a_good_one_takes_over()
    {
        var file = WritePolicy("policy.json", Policy);
        await using var server = await StartAsync(file);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{CandorServer.Host}:{server.HttpPort}") };
        var before = SHA256.HashData(await http.GetByteArrayAsync("/.well-known/candor/policy"));

        File.WriteAllText(file, "{\n  \"rules\": [\n    { \"id\": \"x\", \"description\": \"d\", \"phrases\": [\"y\"], \"action\": \"drop\" }\n  ]\n}\n");
        var reload = await server.RunCliAsync("policy", "reload");
        output.WriteLine(reload.Describe());
        Assert.Equal(1, reload.ExitCode);
        Assert.Contains("line 3", reload.Output);
        Assert.Contains("stays in force", reload.Output);
        Assert.Equal(before, SHA256.HashData(await http.GetByteArrayAsync("/.well-known/candor/policy")));
        var still = await ScriptAsync(server, "reject", "--text", "please buy now", "--rule", "spam-1");
        Assert.True(still.Succeeded, $"the old policy is not in force after a failed reload\n{still.Describe()}\n{server.Transcript}");

        File.WriteAllText(file, """{"rules":[{"id":"spam-2","description":"Pills","phrases":["cheap pills"]}]}""");
        reload = await server.RunCliAsync("policy", "reload");
        output.WriteLine(reload.Describe());
        Assert.True(reload.Succeeded, $"reload failed\n{reload.Describe()}\n{server.Transcript}");
        Assert.NotEqual(before, SHA256.HashData(await http.GetByteArrayAsync("/.well-known/candor/policy")));
        var changed = await ScriptAsync(server, "reject", "--text", "CHEAP pills here", "--rule", "spam-2");
        Assert.True(changed.Succeeded, $"the new policy is not in force\n{changed.Describe()}\n{server.Transcript}");
        var freed = await ScriptAsync(server, "deliver", "--text", "buy now");
        Assert.True(freed.Succeeded, $"the old rule is still in force\n{freed.Describe()}\n{server.Transcript}");
        Assert.Contains("Policy reload failed", server.Output);
        Assert.Contains("Policy changed from interop-1", server.Output);
    }

    [Fact]
    public async Task A_malformed_policy_file_stops_the_start_with_file_line_and_reason()
    {
        var file = WritePolicy("bad.json", "{\n  \"rules\": [\n    { \"id\": \"a\", \"description\": \"d\", \"phrases\": [\"x\"] },,\n  ]\n}\n");
        var data = Path.Combine(_directory, "data");
        var result = await ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, "serve", "--policy", file, "--data", data, "--c2s-port", "0", "--tls-port", "-1", "--http-port", "-1", "--s2s-port", "-1"],
            TimeSpan.FromSeconds(60));
        output.WriteLine(result.Describe());
        Assert.NotEqual(0, result.ExitCode);
        var errors = result.Output.Split('\n').Where(l => l.StartsWith("[stderr] ", StringComparison.Ordinal)).ToList();
        var error = Assert.Single(errors);
        Assert.Contains(file, error);
        Assert.Contains("line 3", error);
        Assert.Contains("not valid JSON", error);
    }

    [Fact]
    public async Task Policy_check_explains_and_exits_by_verdict()
    {
        var file = WritePolicy("policy.json", Policy);
        var rejected = await ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, "policy", "check", "Please ＢＵＹ ＮＯＷ", "--policy", file], TimeSpan.FromSeconds(60));
        output.WriteLine(rejected.Describe());
        Assert.Equal(1, rejected.ExitCode);
        Assert.Contains("spam-1", rejected.Output);
        Assert.Contains("phrase \"buy now\" matched \"buy now\"", rejected.Output);

        var contact = await ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, "policy", "check", "crypto", "--contact", "--policy", file], TimeSpan.FromSeconds(60));
        output.WriteLine(contact.Describe());
        Assert.Equal(0, contact.ExitCode);
        Assert.Contains("does not apply", contact.Output);
    }
}
