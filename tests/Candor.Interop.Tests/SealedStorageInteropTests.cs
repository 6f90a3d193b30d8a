using System.Security.Cryptography;
using System.Text;
using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// Promise 4 against a real <c>candor serve</c> process: what a stolen copy of the data directory and the
/// server's log show, a wrong or missing key, and <c>candor key rotate</c> beside the running server under load.
/// </summary>
public sealed class SealedStorageInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);
    private const string Marker = "okapi-vermilion-5309";

    [Fact]
    public async Task A_stolen_data_directory_and_the_servers_log_show_no_user_content_and_after_a_restart_every_owner_reads_it_back()
    {
        await using var server = await CandorServer.StartAsync(output, ["--log-level", "Trace"]);
        await server.AddUserAsync("alice@localhost", "alice-pw");
        await server.AddUserAsync("bob@localhost", "bob-pw");
        await server.AddUserAsync("carol@localhost", "carol-pw");
        var bob = Jid.Parse("bob@localhost");
        await using (var alice = await ConnectAsync(server, "alice@localhost/desk", "alice-pw"))
        await using (var carol = await ConnectAsync(server, "carol@localhost/desk", "carol-pw"))
        {
            await alice.IqAsync(Iq("set", $"<vCard xmlns='vcard-temp'><FN>{Marker} vcard</FN></vCard>"));
            await alice.IqAsync(Iq("set", $"<query xmlns='jabber:iq:private'><note xmlns='urn:candor:test'>{Marker} private</note></query>"));
            await alice.SetRosterItemAsync(bob, $"{Marker} roster name", [$"{Marker} group"]);
            var received = Received(carol, $"{Marker} chat");
            await alice.SendMessageAsync(Jid.Parse("carol@localhost"), $"{Marker} chat");
            await received.WaitAsync(Timeout);
            await alice.SendMessageAsync(bob, $"{Marker} offline");
            await alice.PingAsync();
        }
        await server.StopAsync();

        foreach (var file in Directory.EnumerateFiles(server.DataDirectory, "*", SearchOption.AllDirectories))
            Assert.False(Contains(File.ReadAllBytes(file), Marker), $"{file} holds the marker");
        Assert.DoesNotContain(Marker, server.Output);

        await server.StartAsync();
        await using (var alice = await ConnectAsync(server, "alice@localhost/phone", "alice-pw"))
        {
            Assert.Contains($"{Marker} vcard", (await alice.IqAsync(Iq("get", "<vCard xmlns='vcard-temp'/>"))).ToString());
            Assert.Contains($"{Marker} private", (await alice.IqAsync(Iq("get", "<query xmlns='jabber:iq:private'><note xmlns='urn:candor:test'/></query>"))).ToString());
            var item = Assert.Single(await alice.GetRosterAsync(), i => i.Jid == bob);
            Assert.Equal($"{Marker} roster name", item.Name);
            Assert.Equal([$"{Marker} group"], item.Groups);
        }
        var offline = await ConnectAsync(server, "bob@localhost/phone", "bob-pw", presence: false);
        await using (offline)
        {
            var message = Received(offline, $"{Marker} offline");
            await offline.SendPresenceAsync();
            await message.WaitAsync(Timeout);
        }
    }

    [Fact]
    public async Task A_wrong_or_missing_key_stops_the_server_from_starting_with_one_line()
    {
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("dora@localhost", "pw");
        await server.StopAsync();
        var keyFile = Path.Combine(server.DataDirectory, "keys", "master.key");
        var rightKey = (await File.ReadAllTextAsync(keyFile)).Trim();
        string[] serve = ["serve", "--c2s-port", "0", "--tls-port", "-1", "--http-port", "-1", "--https-port", "-1", "--s2s-port", "-1", "--bind", "127.0.0.1"];

        await File.WriteAllTextAsync(keyFile, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
        UserCommandTests.AssertOneLineError(await server.RunCliAsync(serve), 1, "wrong master key");
        UserCommandTests.AssertOneLineError(await server.RunCliAsync("user", "list"), 1, "wrong master key");

        File.Delete(keyFile);
        UserCommandTests.AssertOneLineError(await server.RunCliAsync(serve), 1, "no master key");
        Assert.False(File.Exists(keyFile), "no new key may be made over sealed data");

        UserCommandTests.AssertOneLineError(await RunAsync(server, ["serve", "--c2s-port", "0"], ("CANDOR__MASTERKEY", "not-a-key")), 2, "MasterKey is not a base64 256-bit key");
        var list = await RunAsync(server, ["user", "list"], ("CANDOR__MASTERKEY", rightKey));
        Assert.True(list.Succeeded, list.Describe());
        Assert.Contains("dora@localhost", list.Output);
    }

    [Fact]
    public async Task Key_rotate_beside_the_running_server_under_load_loses_nothing_and_only_the_new_key_remains()
    {
        var server0Directory = Directory.CreateTempSubdirectory("candor-rotate-");
        try
        {
            await RotateUnderLoadAsync(server0Directory.FullName);
        }
        finally
        {
            server0Directory.Delete(recursive: true);
        }
    }

    private async Task RotateUnderLoadAsync(string configDirectory)
    {
        // Every message sent while the rotation runs is kept, however long that takes.
        var config = Path.Combine(configDirectory, "candor.json");
        await File.WriteAllTextAsync(config, """{ "Candor": { "MaxOfflineMessages": 1000000 } }""");
        await using var server = await CandorServer.StartAsync(output, ["--config", config]);
        await server.AddUserAsync("erin@localhost", "erin-pw");
        await server.AddUserAsync("finn@localhost", "finn-pw");
        var finn = Jid.Parse("finn@localhost");
        var keyFile = Path.Combine(server.DataDirectory, "keys", "master.key");
        var oldKey = await File.ReadAllTextAsync(keyFile);

        var sent = 0;
        await using (var erin = await ConnectAsync(server, "erin@localhost/desk", "erin-pw"))
        {
            var rotate = server.RunCliAsync("key", "rotate");
            // Offline messages to finn are sealed before, during and after the rotation.
            while (!rotate.IsCompleted || sent < 100)
            {
                await erin.SendMessageAsync(finn, $"during rotation {sent}", requestReceipt: false);
                if (++sent % 25 == 0) await erin.PingAsync();
            }
            var rotated = await rotate;
            Assert.True(rotated.Succeeded, rotated.Describe() + server.Transcript);
            Assert.Contains("the running server seals with the new key", rotated.Output);
            await erin.PingAsync();
        }
        Assert.NotEqual(oldKey, await File.ReadAllTextAsync(keyFile));
        Assert.False(File.Exists(keyFile + ".next"));

        var status = await server.RunCliAsync("key", "status");
        Assert.True(status.Succeeded, status.Describe());
        var keyLines = status.Output.Split('\n').Where(l => l.Contains("records", StringComparison.Ordinal) && !l.StartsWith("KEY", StringComparison.Ordinal)).ToList();
        Assert.True(keyLines.Count == 1 && keyLines[0].Contains("seals new records"), status.Describe());

        // Restarted with nothing but the new key on disk, the server hands finn every message.
        await server.StopAsync();
        await server.StartAsync();
        var bodies = new List<string>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var reader = await ConnectAsync(server, "finn@localhost/phone", "finn-pw", presence: false);
        reader.EventReceived += e =>
        {
            if (e is not ChatMessage { Body: { } body }) return;
            lock (bodies)
            {
                bodies.Add(body);
                if (bodies.Count == sent) all.TrySetResult();
            }
        };
        await reader.SendPresenceAsync();
        await Task.WhenAny(all.Task, Task.Delay(Timeout));
        Assert.True(all.Task.IsCompleted, $"{bodies.Count} of {sent} messages arrived\n{server.Transcript}");
        Assert.Equal(Enumerable.Range(0, sent).Select(i => $"during rotation {i}"), bodies);
    }

    private static Element Iq(string type, string payload) =>
        StoredStanza.Parse($"<iq xmlns='jabber:client' type='{type}'>{payload}</iq>");

    private static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0;

    private static Task<ProcessResult> RunAsync(CandorServer server, string[] arguments, (string Name, string Value) variable) =>
        ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost, [CandorServer.Launcher.CandorDll, .. arguments, "--data", server.DataDirectory], Timeout,
            new Dictionary<string, string?> { [variable.Name] = variable.Value });

    internal static Task Received(XmppClient client, string body)
    {
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.EventReceived += e =>
        {
            if (e is ChatMessage { Body: { } b } && b == body) received.TrySetResult();
        };
        return received.Task;
    }

    internal static async Task<XmppClient> ConnectAsync(CandorServer server, string jid, string password, bool presence = true, string[]? mechanisms = null)
    {
        var defaults = new XmppClientOptions { Jid = Jid.Parse(jid), Password = password };
        var client = new XmppClient(new XmppClientOptions
        {
            Jid = Jid.Parse(jid),
            Password = password,
            Host = CandorServer.Host,
            Port = server.C2sPort,
            CertificateFingerprint = server.CertificateFingerprint,
            AutoReceipts = false,
            Mechanisms = mechanisms ?? defaults.Mechanisms,
        });
        await client.ConnectAsync();
        if (presence) await client.SendPresenceAsync();
        return client;
    }
}
