using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// The bundled web client (Converse.js at <c>/</c>) in Debian's Chromium, driven by npm playwright-core
/// (browser/converse-chat.mjs; never a downloaded browser). Fails on any request to a host other than the
/// Candor server, and on any Content-Security-Policy refusal.
/// </summary>
[Trait("Category", "Interop")]
public sealed class BrowserTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";
    private const string Node = "/usr/bin/node";

    private static string BrowserDirectory => Path.Combine(AppContext.BaseDirectory, "browser");

    /// <summary>
    /// Alice and Bob log in in two browser contexts, Alice adds Bob and Bob accepts through the Converse UI,
    /// both see each other online and chat both ways; Carol, a slixmpp client over TCP, writes to Bob, whose
    /// page shows it; Alice runs "List my sessions" and sees its table and its note; Bob logs in on a second device (a
    /// fresh browser context) and its chat with Alice shows the conversation from the message archive. Screenshots of
    /// the conversations go to TestResults/browser/.
    /// </summary>
    [Fact]
    public Task Two_users_subscribe_and_chat_in_Chromium_with_no_request_elsewhere() => RunConverseAsync(omemo: false);

    /// <summary>
    /// The same conversation with both pages on BOSH (<c>/?transport=bosh</c>, XEP-0206: no WebSocket opened, requests
    /// to /http-bind), and in it Alice attaches a picture with Converse's paperclip button (HTTP File Upload, XEP-0363),
    /// which Bob's page shows as an image loaded from the server's upload URL.
    /// </summary>
    [Fact]
    public Task Two_users_chat_over_BOSH_and_one_sends_a_picture_the_other_sees() => RunConverseAsync(omemo: false, bosh: true);

    /// <summary>
    /// Alice and Bob become contacts in two browser contexts, turn on OMEMO (Converse's own implementation, on
    /// candor's PEP) and write to each other: each sees the other's message decrypted with the lock icon, no
    /// WebSocket frame their pages sent carries the plaintext, and neither page logs a PubSub error.
    /// </summary>
    [Fact]
    public Task Two_users_chat_with_OMEMO_in_Chromium() => RunConverseAsync(omemo: true);

    // Known flake (stop 11 note): right after the subscription, Converse sometimes misses the contact's presence or
    // OMEMO devices and waits out its timeout. Until that race is found, a failed run is reported in the output and
    // the scenario runs once more on a fresh server; two failures fail the test.
    private async Task RunConverseAsync(bool omemo, bool bosh = false)
    {
        try
        {
            await RunConverseOnceAsync(omemo, bosh);
        }
        catch (Exception e) when (e is Xunit.Sdk.XunitException)
        {
            output.WriteLine($"FIRST ATTEMPT FAILED, running once more:\n{e.Message}");
            await RunConverseOnceAsync(omemo, bosh);
        }
    }

    private async Task RunConverseOnceAsync(bool omemo, bool bosh)
    {
        await using var server = await PrepareAsync();

        const string carolSays = "Carol here, from slixmpp over TCP";
        var screenshots = ScreenshotDirectory();
        var config = Path.Combine(server.DataDirectory, "browser-test.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            url = $"http://{CandorServer.Host}:{server.HttpPort}/",
            domain = CandorServer.Domain,
            alice = new { jid = "alice@localhost", password = "alice-secret" },
            bob = new { jid = "bob@localhost", password = "bob-secret" },
            carol = new { jid = "carol@localhost" },
            slixmppSend = new[]
            {
                Tools.Python, Tools.Script("send_one.py"), CandorServer.Host, server.C2sPort.ToString(),
                "carol@localhost", "carol-secret", "bob@localhost", carolSays,
            },
            slixmppBody = carolSays,
            omemo,
            transport = bosh ? "bosh" : "websocket",
            picture = bosh,
            uploadOrigin = $"https://localhost:{server.HttpsPort}",
            screenshots,
            chromium = Chromium,
        }));

        var result = await ChildProcess.RunAsync(Node, [Path.Combine(BrowserDirectory, "converse-chat.mjs"), config],
            TimeSpan.FromMinutes(4));
        output.WriteLine(result.Describe());
        foreach (var png in Directory.GetFiles(screenshots, "*.png"))
            output.WriteLine($"screenshot: {png}");
        Assert.True(result.Succeeded, $"the browser test failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("\nPASS", result.Output);
    }

    /// <summary>
    /// Converse 14's OMEMO (its libomemo; it publishes both namespaces and, like Candor, prefers urn:xmpp:omemo:2 when
    /// the peer publishes it too) against Candor's own client: bob's
    /// `candor send --require-e2e` starts a session from alice's Converse bundle and Converse shows the message
    /// decrypted with its lock; alice then writes to carol, Converse starting the session from the bundle carol's
    /// `candor listen` published, and `candor listen --json` prints it decrypted as omemo:2.
    /// </summary>
    [Fact]
    public Task Candor_client_and_Converse_exchange_OMEMO_both_ways() => CandorAndConverseAsync(legacyOnly: false);

    /// <summary>
    /// The same with carol's omemo:2 device list emptied after `candor listen` published both: Converse then knows her
    /// device from the legacy list only (a device in both lists it encrypts to in omemo:2 alone), builds a legacy session
    /// from the bundle Candor signed (XEdDSA-verified by Converse's libomemo), and `candor listen` decrypts the
    /// eu.siacs.conversations.axolotl message.
    /// </summary>
    [Fact]
    public Task Converse_writes_legacy_OMEMO_to_a_Candor_device_it_knows_from_the_legacy_list() => CandorAndConverseAsync(legacyOnly: true);

    private async Task CandorAndConverseAsync(bool legacyOnly)
    {
        await using var server = await PrepareAsync();
        var tag = Guid.NewGuid().ToString("N")[..8];
        var sendText = $"from candor send {tag} ünïcödé";
        var toCarol = $"from Converse {tag} to candor listen";
        await using var listen = ChildProcess.Start(CandorServer.Launcher.DotnetHost, OmemoInteropTests.CandorArguments(server,
            "listen", "--jid", "carol@localhost", "--count", legacyOnly ? "2" : "1", "--json"), OmemoInteropTests.Environment(server, "carol-secret"));
        Assert.True(await listen.WaitForOutputAsync("listening as", TimeSpan.FromSeconds(60)), $"listen did not start\n{listen.Output}");
        // The script's login makes the server tell carol of a new login: the first of listen's two messages.
        if (legacyOnly)
        {
            var hide = await ChildProcess.RunAsync(Tools.Python, [Tools.Script("omemo_hide_v2.py"), CandorServer.Host,
                server.C2sPort.ToString(), "carol@localhost", "carol-secret"], TimeSpan.FromSeconds(60));
            Assert.True(hide.Succeeded, $"emptying carol's omemo:2 device list failed\n{hide.Describe()}");
        }

        var screenshots = ScreenshotDirectory();
        var config = Path.Combine(server.DataDirectory, "browser-candor-test.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            url = $"http://{CandorServer.Host}:{server.HttpPort}/",
            domain = CandorServer.Domain,
            alice = new { jid = "alice@localhost", password = "alice-secret" },
            candor = new
            {
                bob = "bob@localhost",
                carol = "carol@localhost",
                send = (string[])[CandorServer.Launcher.DotnetHost, .. OmemoInteropTests.CandorArguments(server,
                    "send", "--jid", "bob@localhost", "--require-e2e", "alice@localhost", sendText)],
                sendText,
                toCarol,
            },
            screenshots,
            chromium = Chromium,
        }));
        // The node script runs `candor send` as bob: its password and state directory come through the environment.
        var result = await ChildProcess.RunAsync(Node, [Path.Combine(BrowserDirectory, "converse-chat.mjs"), config],
            TimeSpan.FromMinutes(4), OmemoInteropTests.Environment(server, "bob-secret"));
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"the browser test failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("\nPASS", result.Output);
        Assert.Contains("sent encrypted (OMEMO)", result.Output);
        Assert.Contains(legacyOnly ? "ALICE TO CAROL omemo2=false legacy=true" : "ALICE TO CAROL omemo2=true legacy=false", result.Output);

        Assert.True(await listen.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"listen did not exit\n{listen.Output}");
        output.WriteLine(listen.Output);
        var json = JsonDocument.Parse(listen.Output.Split('\n').First(l => l.StartsWith("{\"from\":\"alice@localhost"))).RootElement;
        Assert.Equal(toCarol, json.GetProperty("body").GetString());
        Assert.True(json.GetProperty("encrypted").GetBoolean());
        Assert.Equal(legacyOnly ? "legacy" : "2", json.GetProperty("omemo").GetString());
        Assert.StartsWith("alice@localhost", json.GetProperty("from").GetString());
    }

    /// <summary>
    /// A chat room in Converse (browser/converse-muc.mjs): a slixmpp occupant creates the room and a members-only
    /// one; Alice opens the room, reads the occupant's message and answers, which the occupant receives; Bob, in a
    /// second browser context, is refused from the members-only room with registration-required, which Converse shows.
    /// </summary>
    [Fact]
    public async Task A_room_in_Converse_with_a_slixmpp_occupant_and_a_members_only_refusal()
    {
        await using var server = await PrepareAsync();
        const string room = "lounge@conference.localhost", club = "club@conference.localhost";
        const string peerSays = "Carol here, from slixmpp", aliceSays = "Hello Carol, Alice in Converse";
        var screenshots = ScreenshotDirectory();
        var config = Path.Combine(server.DataDirectory, "browser-muc-test.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            url = $"http://{CandorServer.Host}:{server.HttpPort}/",
            alice = new { jid = "alice@localhost", password = "alice-secret" },
            bob = new { jid = "bob@localhost", password = "bob-secret" },
            room,
            club,
            peer = new[]
            {
                Tools.Python, Tools.Script("muc_peer.py"), CandorServer.Host, server.C2sPort.ToString(), "carol@localhost", "carol-secret",
                room, "carol", "--say", peerSays, "--expect", aliceSays, "--from", "alice", "--club", club,
            },
            peerSays,
            aliceSays,
            screenshots,
            chromium = Chromium,
        }));

        var result = await ChildProcess.RunAsync(Node, [Path.Combine(BrowserDirectory, "converse-muc.mjs"), config], TimeSpan.FromMinutes(4));
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"the browser test failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("\nPASS", result.Output);
        Assert.Contains("RECEIVED", result.Output);
    }

    /// <summary>Checks the tools the browser tests need, then starts a server with alice, bob and carol (passwords NAME-secret).</summary>
    private async Task<CandorServer> PrepareAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} not found: install the Debian package chromium (./test.sh does this)");
        Assert.True(File.Exists(Node), $"{Node} not found: install the Debian package nodejs (./test.sh does this)");
        await Tools.RequireSlixmppAsync();
        await InstallPlaywrightAsync();
        var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob", "carol" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");
        return server;
    }

    /// <summary><c>npm ci</c> of the pinned playwright-core (package-lock.json), unless that version is there already.</summary>
    private async Task InstallPlaywrightAsync()
    {
        var installed = Path.Combine(BrowserDirectory, "node_modules", "playwright-core", "package.json");
        var wanted = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(BrowserDirectory, "package.json")))
            .RootElement.GetProperty("dependencies").GetProperty("playwright-core").GetString();
        if (File.Exists(installed)
            && JsonDocument.Parse(await File.ReadAllTextAsync(installed)).RootElement.GetProperty("version").GetString() == wanted)
            return;
        var npm = Tools.RequireCommand("npm", "npm");
        var result = await ChildProcess.RunAsync(npm, ["ci", "--prefix", BrowserDirectory, "--no-audit", "--no-fund"],
            TimeSpan.FromMinutes(3), new Dictionary<string, string?> { ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1" });
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"npm ci of playwright-core failed\n{result.Describe()}");
    }

    /// <summary>TestResults/browser/ at the repository root (beside Candor.slnx), else beside the tests.</summary>
    private static string ScreenshotDirectory()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Candor.slnx")))
            directory = directory.Parent;
        var path = Path.Combine(directory?.FullName ?? AppContext.BaseDirectory, "TestResults", "browser");
        if (Directory.Exists(path))
            foreach (var old in Directory.GetFiles(path, "*.png"))
                File.Delete(old);
        Directory.CreateDirectory(path);
        return path;
    }
}
