using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// OMEMO between Candor's own client (`candor send`, `candor listen --json`) and python-omemo (Debian python3-omemo
/// with python3-twomemo for urn:xmpp:omemo:2, python3-oldmemo for the legacy eu.siacs.conversations.axolotl, over
/// slixmpp, scripts/omemo_peer.py), through Candor: each side starts a session once, and messages decrypt both ways.
/// A legacy peer publishes only the legacy namespace, so Candor has to fall back to it.
/// </summary>
[Trait("Category", "Interop")]
public sealed class OmemoInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    internal static Dictionary<string, string?> Environment(CandorServer server, string password) => new()
    {
        ["CANDOR_PASSWORD"] = password,
        ["XDG_CONFIG_HOME"] = Path.Combine(server.DataDirectory, "client-config"),
    };

    internal static string[] CandorArguments(CandorServer server, params string[] args) =>
        [CandorServer.Launcher.CandorDll, .. args, "--server", $"{CandorServer.Host}:{server.C2sPort}", "--fingerprint", server.CertificateFingerprint];

    private static ChildProcess Peer(CandorServer server, string mode, string expect, string reply, string go, string omemo) =>
        ChildProcess.Start(Tools.Python, [Tools.Script("omemo_peer.py"), CandorServer.Host, server.C2sPort.ToString(),
            "bob@localhost", "bob-secret", mode, "--peer", "alice@localhost", "--expect", expect, "--reply", reply, "--go", go,
            "--namespace", omemo]);

    private async Task<JsonElement> ListenForOneAsync(CandorServer server, ChildProcess peer, string go)
    {
        await using var listen = ChildProcess.Start(CandorServer.Launcher.DotnetHost,
            CandorArguments(server, "listen", "--jid", "alice@localhost", "--count", "1", "--json"), Environment(server, "alice-secret"));
        Assert.True(await listen.WaitForOutputAsync("listening as", StepTimeout), $"listen did not start\n{listen.Output}");
        await File.WriteAllTextAsync(go, "go");
        Assert.True(await listen.WaitForExitAsync(StepTimeout), $"listen did not exit\n{listen.Output}\npeer:\n{peer.Output}");
        output.WriteLine(listen.Output);
        Assert.Equal(0, listen.ExitCode);
        return JsonDocument.Parse(listen.Output.Split('\n').First(l => l.StartsWith('{'))).RootElement.Clone();
    }

    private async Task SendAsync(CandorServer server, string text)
    {
        var send = await ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost,
            CandorArguments(server, "send", "--jid", "alice@localhost", "--require-e2e", "bob@localhost", text), StepTimeout,
            Environment(server, "alice-secret"));
        output.WriteLine(send.Describe());
        Assert.True(send.Succeeded, $"candor send failed\n{send.Describe()}\n{server.Transcript}");
        Assert.Contains("sent encrypted (OMEMO)", send.Output);
    }

    private static void AssertDecrypted(JsonElement json, string text, string omemo)
    {
        Assert.Equal(text, json.GetProperty("body").GetString());
        Assert.True(json.GetProperty("encrypted").GetBoolean());
        Assert.Equal(omemo, json.GetProperty("omemo").GetString());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("error").ValueKind);
        Assert.StartsWith("bob@localhost", json.GetProperty("from").GetString());
    }

    private async Task FinishAsync(ChildProcess peer)
    {
        Assert.True(await peer.WaitForExitAsync(StepTimeout), $"python-omemo did not finish\n{peer.Output}");
        output.WriteLine(peer.Output);
        Assert.True(peer.ExitCode == 0 && peer.Output.Contains("PASS"), $"python-omemo failed\n{peer.Output}");
    }

    /// <summary>`candor send` starts the session (X3DH from python-omemo's bundle); python-omemo decrypts it and answers
    /// on the same session; `candor listen --json` decrypts the answer.</summary>
    [Theory]
    [InlineData("2")]
    [InlineData("legacy")]
    public async Task Candor_starts_the_session_python_omemo_reads_it_and_answers(string omemo)
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var go = Path.Combine(server.DataDirectory, "go");
        var text = $"from candor {Guid.NewGuid():N} <&> ünïcödé";
        var reply = $"from python-omemo {Guid.NewGuid():N}";
        await using var peer = Peer(server, "receive-then-reply", text, reply, go, omemo);
        Assert.True(await peer.WaitForOutputAsync("READY", StepTimeout), $"python-omemo did not start\n{peer.Output}");
        await SendAsync(server, text);
        Assert.True(await peer.WaitForOutputAsync("GOT", StepTimeout), $"python-omemo did not decrypt\n{peer.Output}");
        AssertDecrypted(await ListenForOneAsync(server, peer, go), reply, omemo);
        await FinishAsync(peer);
    }

    /// <summary>python-omemo starts the session from the bundle `candor listen` published; Candor decrypts the key
    /// exchange, then `candor send` answers on that session and python-omemo decrypts it.</summary>
    [Theory]
    [InlineData("2")]
    [InlineData("legacy")]
    public async Task Python_omemo_starts_the_session_candor_reads_it_and_answers(string omemo)
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var go = Path.Combine(server.DataDirectory, "go");
        var first = $"from python-omemo {Guid.NewGuid():N} ünïcödé";
        var answer = $"from candor {Guid.NewGuid():N}";
        await using var peer = Peer(server, "send-first", answer, first, go, omemo);
        Assert.True(await peer.WaitForOutputAsync("READY", StepTimeout), $"python-omemo did not start\n{peer.Output}");
        AssertDecrypted(await ListenForOneAsync(server, peer, go), first, omemo);
        await SendAsync(server, answer);
        await FinishAsync(peer);
    }
}
