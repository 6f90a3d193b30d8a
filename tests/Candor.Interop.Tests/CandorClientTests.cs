using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>candor's own client commands (chat in tmux, send, listen) against a real candor server and slixmpp.</summary>
[Trait("Category", "Interop")]
public sealed class CandorClientTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// `candor chat` as alice in tmux: /add bob, /accept bob's request, sees bob online, shows bob's message,
    /// and answers with text typed at the input line, which the slixmpp peer (scripts/chat_peer.py) receives.
    /// </summary>
    [Fact]
    public async Task Chat_in_tmux_befriends_a_slixmpp_peer_and_exchanges_messages()
    {
        Tools.RequireCommand("tmux", "tmux");
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var incoming = $"hello alice {Guid.NewGuid():N} <&>";
        var answer = $"hi bob, ünïcödé {Guid.NewGuid():N}";

        await using var peer = ChildProcess.Start(Tools.Python,
            [Tools.Script("chat_peer.py"), CandorServer.Host, server.C2sPort.ToString(), "bob@localhost", "bob-secret",
             "alice@localhost", "--say", incoming, "--expect", answer, "--timeout", "90"]);
        Assert.True(await peer.WaitForOutputAsync("READY", StepTimeout), $"peer did not log in\n{peer.Output}\n{server.Transcript}");

        var home = Directory.CreateTempSubdirectory("candor-chat-").FullName;
        try
        {
            var command = $"{Quote(CandorServer.Launcher.DotnetHost)} {Quote(CandorServer.Launcher.CandorDll)} chat --jid alice@localhost " +
                $"--server {CandorServer.Host}:{server.C2sPort} --fingerprint {server.CertificateFingerprint}";
            await using var tmux = await Tmux.StartAsync(command, new Dictionary<string, string?>
            {
                ["CANDOR_PASSWORD"] = "alice-secret",
                ["HOME"] = home,
            }, home, width: 160, height: 40);
            async Task<string> Context(string what) =>
                $"{what}\n--- chat screen ---\n{await tmux.CaptureAsync()}\n--- peer ---\n{peer.Output}\n{server.Transcript}";

            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "Connected as alice@localhost/") is not null, await Context("chat did not log in"));
            Assert.Contains("SCRAM-SHA-256-PLUS", await tmux.CaptureAsync());

            await tmux.SendLineAsync("/add bob@localhost");
            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "bob@localhost asks to see your presence") is not null,
                await Context("no subscription request from bob shown"));
            await tmux.SendLineAsync("/accept bob@localhost");
            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "bob@localhost online") is not null, await Context("bob is not shown online"));
            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, incoming) is not null, await Context("bob's message is not shown"));

            await tmux.SendLineAsync("/msg bob@localhost " + answer);
            Assert.True(await peer.WaitForExitAsync(TimeSpan.FromSeconds(60)), await Context("peer did not finish"));
            Assert.True(peer.ExitCode == 0, await Context($"peer exited with {peer.ExitCode}"));
            var received = peer.Output.Split('\n').First(l => l.StartsWith("RECEIVED ", StringComparison.Ordinal));
            using var json = JsonDocument.Parse(received["RECEIVED ".Length..]);
            Assert.Equal(answer, json.RootElement.GetProperty("body").GetString());
            Assert.True(json.RootElement.GetProperty("receipt").GetBoolean(), "candor chat should ask for a XEP-0184 receipt");

            // The /who listing and a clean /quit with exit status 0.
            await tmux.SendLineAsync("/who");
            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "bob@localhost [both]") is not null, await Context("/who does not list bob"));
            await tmux.SendLineAsync("/quit");
            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "[program exited with status 0]") is not null, await Context("chat did not quit cleanly"));
            output.WriteLine(await tmux.CaptureAsync());
        }
        finally
        {
            TryDelete(home);
        }
    }

    /// <summary>
    /// Two `candor chat` screens in tmux, alice's and bob's, with no flag: each publishes its OMEMO device at start,
    /// so alice's message to bob and bob's answer go encrypted (the "[omemo]" marker on both screens, for the line
    /// sent and the line received), and bob's screen announces alice's new device with its fingerprint.
    /// </summary>
    [Fact]
    public async Task Two_chat_screens_exchange_OMEMO_encrypted_messages_by_default()
    {
        Tools.RequireCommand("tmux", "tmux");
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var tag = Guid.NewGuid().ToString("N")[..8];
        var toBob = $"secret for bob {tag}";
        var toAlice = $"secret for alice {tag}";
        var homes = new List<string>();
        Task<Tmux> ChatAsync(string user) => StartChatAsync(server, user, homes);
        try
        {
            await using var alice = await ChatAsync("alice");
            await using var bob = await ChatAsync("bob");
            async Task<string> Context(string what) =>
                $"{what}\n--- alice ---\n{await alice.CaptureAsync()}\n--- bob ---\n{await bob.CaptureAsync()}\n{server.Transcript}";

            await alice.SendLineAsync($"/msg bob@localhost {toBob}");
            Assert.True(await alice.WaitForAnyAsync(StepTimeout, $"me: [omemo] {toBob}") is not null, await Context("alice's line is not marked encrypted"));
            Assert.True(await bob.WaitForAnyAsync(StepTimeout, $"[omemo] {toBob}") is not null, await Context("bob did not show alice's message decrypted"));
            Assert.True(await bob.WaitForAnyAsync(StepTimeout, "new OMEMO device of alice@localhost") is not null, await Context("bob was not told of alice's device"));

            await bob.SendLineAsync($"/msg alice@localhost {toAlice}");
            Assert.True(await bob.WaitForAnyAsync(StepTimeout, $"me: [omemo] {toAlice}") is not null, await Context("bob's line is not marked encrypted"));
            Assert.True(await alice.WaitForAnyAsync(StepTimeout, $"[omemo] {toAlice}") is not null, await Context("alice did not show bob's answer decrypted"));
            Assert.DoesNotContain("[plain]", await alice.CaptureAsync());
            Assert.DoesNotContain("[plain]", await bob.CaptureAsync());
            output.WriteLine(await alice.CaptureAsync());
            output.WriteLine(await bob.CaptureAsync());
            await alice.SendLineAsync("/quit");
            await bob.SendLineAsync("/quit");
            Assert.True(await alice.WaitForAnyAsync(StepTimeout, "[program exited with status 0]") is not null, await Context("alice's chat did not quit cleanly"));
        }
        finally
        {
            homes.ForEach(TryDelete);
        }
    }

    /// <summary>`candor chat` for USER@localhost (password USER-secret) in tmux with a fresh HOME, once logged in.</summary>
    /// <summary>carol@localhost (slixmpp, scripts/omemo_room.py) makes <paramref name="room"/> members-only and non-anonymous, with these members.</summary>
    internal static async Task MakeOmemoRoomAsync(CandorServer server, string room, params string[] members)
    {
        var setup = await ChildProcess.RunAsync(Tools.Python, [Tools.Script("omemo_room.py"), CandorServer.Host, server.C2sPort.ToString(),
            "carol@localhost", "carol-secret", room, .. members], TimeSpan.FromSeconds(60));
        Assert.True(setup.Succeeded && setup.Output.Contains("READY"), $"the room was not made\n{setup.Describe()}\n{server.Transcript}");
    }

    internal static async Task<Tmux> StartChatAsync(CandorServer server, string user, List<string> homes)
    {
        var home = Directory.CreateTempSubdirectory("candor-chat-").FullName;
        homes.Add(home);
        var command = $"{Quote(CandorServer.Launcher.DotnetHost)} {Quote(CandorServer.Launcher.CandorDll)} chat --jid {user}@localhost " +
            $"--server {CandorServer.Host}:{server.C2sPort} --fingerprint {server.CertificateFingerprint}";
        var tmux = await Tmux.StartAsync(command, new Dictionary<string, string?> { ["CANDOR_PASSWORD"] = $"{user}-secret", ["HOME"] = home },
            home, width: 160, height: 40);
        Assert.True(await tmux.WaitForAnyAsync(StepTimeout, $"Connected as {user}@localhost/") is not null,
            $"{user}'s chat did not log in\n{await tmux.CaptureAsync()}\n{server.Transcript}");
        Assert.Contains("OMEMO device", await tmux.CaptureAsync());
        return tmux;
    }

    /// <summary>
    /// OMEMO in a group chat from `candor chat`: carol (slixmpp, scripts/omemo_room.py) makes a members-only,
    /// non-anonymous room with alice and bob as members; both /join it, and alice's message and bob's answer reach the
    /// other decrypted ("[omemo]"). (That other rooms are refused is OmemoTests' part.)
    /// </summary>
    [Fact]
    public async Task Two_chat_screens_talk_OMEMO_encrypted_in_a_members_only_room()
    {
        Tools.RequireCommand("tmux", "tmux");
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob", "carol" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");
        const string room = "club@conference.localhost";
        await MakeOmemoRoomAsync(server, room, "alice@localhost", "bob@localhost");
        var tag = Guid.NewGuid().ToString("N")[..8];
        var homes = new List<string>();
        try
        {
            await using var alice = await StartChatAsync(server, "alice", homes);
            await using var bob = await StartChatAsync(server, "bob", homes);
            async Task<string> Context(string what) =>
                $"{what}\n--- alice ---\n{await alice.CaptureAsync()}\n--- bob ---\n{await bob.CaptureAsync()}\n{server.Transcript}";

            await alice.SendLineAsync($"/join {room}");
            Assert.True(await alice.WaitForAnyAsync(StepTimeout, $"Joined {room} as alice") is not null, await Context("alice did not join"));
            await bob.SendLineAsync($"/join {room}");
            Assert.True(await bob.WaitForAnyAsync(StepTimeout, $"Joined {room} as bob") is not null, await Context("bob did not join"));
            await Task.Delay(TimeSpan.FromSeconds(2)); // bob's presence in the room reaches alice

            await alice.SendLineAsync($"/msg {room} room secret {tag}");
            Assert.True(await bob.WaitForAnyAsync(StepTimeout, $"alice: [omemo] room secret {tag}") is not null, await Context("bob did not read alice's message"));
            await bob.SendLineAsync($"room answer {tag}");
            Assert.True(await alice.WaitForAnyAsync(StepTimeout, $"bob: [omemo] room answer {tag}") is not null, await Context("alice did not read bob's answer"));
            // bob's own line shows when the room reflects it, which may be after alice has it.
            Assert.True(await bob.WaitForAnyAsync(StepTimeout, $"me: [omemo] room answer {tag}") is not null, await Context("bob's screen did not show his own answer"));
            output.WriteLine(await alice.CaptureAsync());
            output.WriteLine(await bob.CaptureAsync());
        }
        finally
        {
            homes.ForEach(TryDelete);
        }
    }

    /// <summary>`candor listen` prints what `candor send` sent; send exits 0 only after the server took it.</summary>
    [Fact]
    public async Task Send_and_listen_exchange_with_each_other()
    {
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var text = $"from send {Guid.NewGuid():N} <&> ünïcödé";

        await using var listen = Candor(server, "bob-secret", "listen", "--jid", "bob@localhost", "--count", "2");
        Assert.True(await listen.WaitForOutputAsync("listening as bob@localhost/", StepTimeout), $"listen did not start\n{listen.Output}\n{server.Transcript}");

        var send = await RunCandorAsync(server, "alice-secret", "send", "--jid", "alice@localhost", "bob@localhost", text);
        Assert.True(send.Succeeded, $"candor send failed\n{send.Describe()}\n{server.Transcript}");
        var second = await RunCandorAsync(server, "alice-secret", "send", "--jid", "alice@localhost", "bob", "two\nlines");
        Assert.True(second.Succeeded, $"candor send failed\n{second.Describe()}");

        Assert.True(await listen.WaitForExitAsync(StepTimeout), $"listen did not exit after two messages\n{listen.Output}");
        Assert.Equal(0, listen.ExitCode);
        // bob's listen published an OMEMO device, so both sends encrypted without being asked to.
        Assert.Contains("sent encrypted (OMEMO)", send.Output);
        var lines = listen.Output.Split('\n').Where(l => l.StartsWith('[') && l.Contains("] alice@localhost: ", StringComparison.Ordinal)
            && !l.StartsWith("[stderr]", StringComparison.Ordinal)).ToList();
        Assert.Equal([$"[omemo] alice@localhost: {text}", "[omemo] alice@localhost: two\\nlines"], lines);

        // Both sends bound a resource of the server's choosing, but sent the same SASL2 user-agent id (kept per
        // account in the configuration directory): the server knows them as one client, named "candor".
        var sessions = await server.RunCliAsync("user", "sessions", "alice@localhost");
        Assert.True(sessions.Succeeded, sessions.Describe());
        var clients = sessions.Output.Split('\n').Skip(1).Where(l => l.Trim().Length > 0).ToList();
        Assert.True(clients.Count == 1 && clients[0].Contains(" candor ", StringComparison.Ordinal), sessions.Describe());
    }

    /// <summary>slixmpp → `candor listen --json`, and `candor send` → slixmpp (scripts/receive_one.py).</summary>
    [Fact]
    public async Task Send_and_listen_exchange_with_slixmpp()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");

        var toListen = $"from slixmpp {Guid.NewGuid():N} \"quoted\"";
        await using (var listen = Candor(server, "bob-secret", "listen", "--jid", "bob@localhost", "--count", "1", "--json"))
        {
            Assert.True(await listen.WaitForOutputAsync("listening as", StepTimeout), $"listen did not start\n{listen.Output}");
            var sent = await ChildProcess.RunAsync(Tools.Python,
                [Tools.Script("send_one.py"), CandorServer.Host, server.C2sPort.ToString(), "alice@localhost", "alice-secret", "bob@localhost", toListen],
                TimeSpan.FromMinutes(1));
            Assert.True(sent.Succeeded, $"send_one.py failed\n{sent.Describe()}\n{server.Transcript}");
            Assert.True(await listen.WaitForExitAsync(StepTimeout), $"listen did not exit\n{listen.Output}");
            Assert.Equal(0, listen.ExitCode);
            var line = listen.Output.Split('\n').First(l => l.StartsWith('{'));
            using var json = JsonDocument.Parse(line);
            Assert.Equal(toListen, json.RootElement.GetProperty("body").GetString());
            Assert.False(json.RootElement.GetProperty("encrypted").GetBoolean());
            Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("omemo").ValueKind);
            Assert.StartsWith("alice@localhost/", json.RootElement.GetProperty("from").GetString());
            Assert.Equal("bob@localhost", json.RootElement.GetProperty("to").GetString()?.Split('/')[0]);
            Assert.Equal("chat", json.RootElement.GetProperty("type").GetString());
            Assert.True(DateTimeOffset.TryParse(json.RootElement.GetProperty("stamp").GetString(), out _));
        }

        var toSlixmpp = $"from candor send {Guid.NewGuid():N}";
        await using var receiver = ChildProcess.Start(Tools.Python,
            [Tools.Script("receive_one.py"), CandorServer.Host, server.C2sPort.ToString(), "alice@localhost", "alice-secret",
             "--from", "bob@localhost", "--expect", toSlixmpp, "--timeout", "60"]);
        Assert.True(await receiver.WaitForOutputAsync("READY", StepTimeout), $"receiver did not log in\n{receiver.Output}");
        var send = await RunCandorAsync(server, "bob-secret", "send", "--jid", "bob@localhost", "alice@localhost", toSlixmpp);
        Assert.True(send.Succeeded, $"candor send failed\n{send.Describe()}");
        Assert.True(await receiver.WaitForExitAsync(StepTimeout), $"receiver did not finish\n{receiver.Output}");
        Assert.True(receiver.ExitCode == 0, $"receiver failed\n{receiver.Output}");
    }

    /// <summary>Each kind of failure: one line on stderr, no stack trace, its own exit code.</summary>
    [Fact]
    public async Task Failures_give_one_line_and_distinct_exit_codes()
    {
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        var fingerprint = server.CertificateFingerprint;
        var address = $"{CandorServer.Host}:{server.C2sPort}";

        async Task Expect(int code, string contains, string password, params string[] args)
        {
            var result = await ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost, [CandorServer.Launcher.CandorDll, .. args],
                TimeSpan.FromMinutes(1), new Dictionary<string, string?> { ["CANDOR_PASSWORD"] = password });
            var stderr = result.Output.Split('\n').Where(l => l.StartsWith("[stderr] ", StringComparison.Ordinal)).ToList();
            Assert.True(result.ExitCode == code, $"expected exit code {code}\n{result.Describe()}");
            Assert.True(stderr.Count == 1, $"expected one line on stderr\n{result.Describe()}");
            Assert.Contains(contains, stderr[0]);
            Assert.DoesNotContain("   at ", result.Output);
        }

        string[] Send(string server, params string[] extra) => ["send", "--jid", "alice@localhost", "--server", server, .. extra, "bob@localhost", "x"];

        await Expect(14, "authentication failed", "wrong", Send(address, "--fingerprint", fingerprint));
        await Expect(13, "not valid", "alice-secret", Send(address));
        await Expect(13, "fingerprint", "alice-secret", Send(address, "--fingerprint", new string('0', 64)));
        await Expect(18, "refused", "alice-secret", ["send", "--jid", "alice@localhost", "--server", address, "--fingerprint", fingerprint, "nobody@localhost", "x"]);
        await Expect(2, "--fingerprint", "alice-secret", Send(address, "--fingerprint", "nonsense"));

        var closed = FreePorts.Take(1)[0];
        await Expect(10, "cannot connect", "alice-secret", Send($"{CandorServer.Host}:{closed}", "--fingerprint", fingerprint));

        using var garbage = new TcpListener(IPAddress.Loopback, 0);
        garbage.Start();
        var garbagePort = ((IPEndPoint)garbage.LocalEndpoint).Port;
        var serveGarbage = Task.Run(async () =>
        {
            for (var i = 0; i < 2; i++)
            {
                using var socket = await garbage.AcceptSocketAsync();
                var buffer = new byte[1024];
                await socket.ReceiveAsync(buffer);
                if (i == 0) await socket.SendAsync(Encoding.ASCII.GetBytes("SSH-2.0-OpenSSH_9.2\r\n<<<>>>"));
                else await socket.SendAsync(Encoding.ASCII.GetBytes("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"));
                await Task.Delay(200);
            }
        });
        await Expect(17, "malformed XML", "alice-secret", Send($"127.0.0.1:{garbagePort}", "--fingerprint", fingerprint));
        await Expect(15, "closed", "alice-secret", Send($"127.0.0.1:{garbagePort}", "--fingerprint", fingerprint));
        await serveGarbage;
    }

    private static ChildProcess Candor(CandorServer server, string password, params string[] args) =>
        ChildProcess.Start(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, .. args, "--server", $"{CandorServer.Host}:{server.C2sPort}", "--fingerprint", server.CertificateFingerprint],
            ClientEnvironment(server, password));

    private static Task<ProcessResult> RunCandorAsync(CandorServer server, string password, params string[] args) =>
        ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, .. args, "--server", $"{CandorServer.Host}:{server.C2sPort}", "--fingerprint", server.CertificateFingerprint],
            TimeSpan.FromMinutes(1), ClientEnvironment(server, password));

    /// <summary>The password, and a configuration directory (where the CLI keeps its user-agent ids) of this test's own.</summary>
    private static Dictionary<string, string?> ClientEnvironment(CandorServer server, string password) => new()
    {
        ["CANDOR_PASSWORD"] = password,
        ["XDG_CONFIG_HOME"] = Path.Combine(server.DataDirectory, "client-config"),
        // No session bus: the CLI would otherwise seal its OMEMO state in the desktop keyring of whoever runs the tests.
        ["DBUS_SESSION_BUS_ADDRESS"] = null,
    };

    /// <summary>The SHA-256 fingerprint of the self-signed certificate candor made in its data directory.</summary>
    private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    internal static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
