using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// OMEMO between Candor's own client (`candor send`, `candor listen --json`, `candor chat`) and python-omemo (Debian
/// python3-omemo with python3-twomemo for urn:xmpp:omemo:2, python3-oldmemo for the legacy
/// eu.siacs.conversations.axolotl, over slixmpp, scripts/omemo_peer.py), through Candor and through a private Prosody
/// from Debian (the client does not depend on Candor's server): each side starts a session once, and messages decrypt
/// both ways. A legacy peer publishes only the legacy namespace, so Candor has to fall back to it.
/// </summary>
[Trait("Category", "Interop")]
public sealed class OmemoInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    internal static Dictionary<string, string?> Environment(IC2sServer server, string password) => new()
    {
        ["CANDOR_PASSWORD"] = password,
        ["XDG_CONFIG_HOME"] = Path.Combine(server.DataDirectory, "client-config"),
        // No session bus: the CLI would otherwise seal its OMEMO state in the desktop keyring of whoever runs the tests.
        ["DBUS_SESSION_BUS_ADDRESS"] = null,
    };

    internal static string[] CandorArguments(IC2sServer server, params string[] args) =>
        [CandorServer.Launcher.CandorDll, .. args, "--server", $"{CandorServer.Host}:{server.C2sPort}", "--fingerprint", server.CertificateFingerprint];

    private static ChildProcess Peer(IC2sServer server, string mode, string expect, string reply, string go, string omemo) =>
        ChildProcess.Start(Tools.Python, [Tools.Script("omemo_peer.py"), CandorServer.Host, server.C2sPort.ToString(),
            "bob@localhost", "bob-secret", mode, "--peer", "alice@localhost", "--expect", expect, "--reply", reply, "--go", go,
            "--namespace", omemo, .. server is ProsodyServer ? (string[])["--mechanism", "SCRAM-SHA-1"] : []]);

    private static ChildProcess RoomPeer(CandorServer server, string mode, string expect, string reply, string room, string omemo) =>
        ChildProcess.Start(Tools.Python, [Tools.Script("omemo_peer.py"), CandorServer.Host, server.C2sPort.ToString(),
            "bob@localhost", "bob-secret", mode, "--peer", "alice@localhost", "--expect", expect, "--reply", reply, "--room", room,
            "--namespace", omemo, "--timeout", "60"]);

    /// <summary>Candor's server, or with "prosody" a private Prosody, with the accounts alice and bob.</summary>
    private async Task<IC2sServer> ServerWithAliceAndBobAsync(string kind)
    {
        if (kind == "prosody") return await ProsodyServer.StartAsync(("alice", "alice-secret"), ("bob", "bob-secret"));
        var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        return server;
    }

    private async Task<JsonElement> ListenForOneAsync(IC2sServer server, ChildProcess peer, string go)
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

    private async Task SendAsync(IC2sServer server, string text)
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
    [InlineData("2", "candor")]
    [InlineData("legacy", "candor")]
    [InlineData("2", "prosody")]
    [InlineData("legacy", "prosody")]
    public async Task Candor_starts_the_session_python_omemo_reads_it_and_answers(string omemo, string serverKind)
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await ServerWithAliceAndBobAsync(serverKind);
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
    [InlineData("2", "candor")]
    [InlineData("legacy", "candor")]
    [InlineData("2", "prosody")]
    [InlineData("legacy", "prosody")]
    public async Task Python_omemo_starts_the_session_candor_reads_it_and_answers(string omemo, string serverKind)
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await ServerWithAliceAndBobAsync(serverKind);
        var go = Path.Combine(server.DataDirectory, "go");
        var first = $"from python-omemo {Guid.NewGuid():N} ünïcödé";
        var answer = $"from candor {Guid.NewGuid():N}";
        await using var peer = Peer(server, "send-first", answer, first, go, omemo);
        Assert.True(await peer.WaitForOutputAsync("READY", StepTimeout), $"python-omemo did not start\n{peer.Output}");
        AssertDecrypted(await ListenForOneAsync(server, peer, go), first, omemo);
        await SendAsync(server, answer);
        await FinishAsync(peer);
    }

    /// <summary>
    /// Group chat (XEP-0384 §6.1) between `candor chat` (alice, in tmux) and python-omemo (bob, slixmpp) in a
    /// members-only, non-anonymous room that carol owns (carol publishes no OMEMO device: alice leaves her out with a
    /// warning). Either side starts the session; each decrypts the other's groupchat message by the real JID.
    /// </summary>
    [Theory]
    [InlineData("2", true)]
    [InlineData("2", false)]
    [InlineData("legacy", true)]
    [InlineData("legacy", false)]
    public async Task Candor_chat_and_python_omemo_talk_in_a_members_only_room(string omemo, bool candorFirst)
    {
        Tools.RequireCommand("tmux", "tmux");
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob", "carol" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");
        const string room = "club@conference.localhost";
        await CandorClientTests.MakeOmemoRoomAsync(server, room, "alice@localhost", "bob@localhost");
        var fromCandor = $"from candor {Guid.NewGuid():N} ünïcödé";
        var fromPython = $"from python-omemo {Guid.NewGuid():N}";
        await using var peer = candorFirst
            ? RoomPeer(server, "receive-then-reply", fromCandor, fromPython, room, omemo)
            : RoomPeer(server, "send-first", fromCandor, fromPython, room, omemo);
        Assert.True(await peer.WaitForOutputAsync("READY", StepTimeout), $"python-omemo did not join\n{peer.Output}\n{server.Transcript}");
        var homes = new List<string>();
        try
        {
            await using var alice = await CandorClientTests.StartChatAsync(server, "alice", homes);
            async Task<string> Context(string what) => $"{what}\n--- alice ---\n{await alice.CaptureAsync()}\n--- python-omemo ---\n{peer.Output}\n{server.Transcript}";
            await alice.SendLineAsync($"/join {room}");
            Assert.True(await alice.WaitForAnyAsync(StepTimeout, $"Joined {room} as alice") is not null, await Context("alice did not join"));
            if (candorFirst)
            {
                await alice.SendLineAsync($"/msg {room} {fromCandor}");
                Assert.True(await peer.WaitForOutputAsync("GOT", StepTimeout), await Context("python-omemo did not decrypt alice's message"));
                Assert.True(await alice.WaitForAnyAsync(StepTimeout, $"bob: [omemo] {fromPython}") is not null, await Context("alice did not read bob's answer"));
            }
            else
            {
                Assert.True(await alice.WaitForAnyAsync(StepTimeout, $"bob: [omemo] {fromPython}") is not null, await Context("alice did not read bob's message"));
                await alice.SendLineAsync($"/msg {room} {fromCandor}");
            }
            await FinishAsync(peer);
            Assert.Contains("carol@localhost publishes no", await alice.CaptureAsync());
            output.WriteLine(await alice.CaptureAsync());
        }
        finally
        {
            homes.ForEach(CandorClientTests.TryDelete);
        }
    }

    /// <summary>
    /// The legacy bundles of four Candor devices (four state directories) verify with python-xeddsa the way XEdDSA
    /// specifies, the identity key mapped back with sign bit 0, not only the way libsignal's curve25519_verify reads them.
    /// An identity with sign bit 1 (half of all Ed25519 keys) would fail: four pass by chance once in 16.
    /// </summary>
    [Fact]
    public async Task Legacy_bundles_verify_under_strict_XEdDSA_in_python_xeddsa()
    {
        await using var server = await ServerWithAliceAndBobAsync("candor");
        const int devices = 4;
        for (var i = 0; i < devices; i++)
        {
            var environment = Environment(server, "alice-secret");
            environment["XDG_CONFIG_HOME"] = Path.Combine(server.DataDirectory, $"client-config-{i}");
            await using var listen = ChildProcess.Start(CandorServer.Launcher.DotnetHost,
                CandorArguments(server, "listen", "--jid", "alice@localhost", "--json"), environment);
            Assert.True(await listen.WaitForOutputAsync("listening as", StepTimeout), $"listen did not start\n{listen.Output}");
        }
        var check = await ChildProcess.RunAsync(Tools.Python, [Tools.Script("omemo_xeddsa_check.py"), CandorServer.Host,
            server.C2sPort.ToString(), "bob@localhost", "bob-secret", "alice@localhost", "--devices", devices.ToString()], StepTimeout);
        output.WriteLine(check.Describe());
        Assert.True(check.Succeeded && check.Output.Contains("PASS"), $"python-xeddsa refused a bundle\n{check.Describe()}");
    }
}
