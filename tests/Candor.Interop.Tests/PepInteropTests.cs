using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>PEP (XEP-0163) through candor, driven by clients we did not write: slixmpp's pubsub plugins.</summary>
[Trait("Category", "Interop")]
public sealed class PepInteropTests(ITestOutputHelper output)
{
    private async Task RunScriptAsync(CandorServer server, string script, params string[] arguments)
    {
        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script(script), CandorServer.Host, server.C2sPort.ToString(), .. arguments], TimeSpan.FromMinutes(4));
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"{script} failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }

    /// <summary>
    /// scripts/pep_slixmpp.py: slixmpp's xep_0060/0163/0115/0084/0153/0054/0172/0222/0223/0048/0049 plugins publish, configure,
    /// retract, purge and delete; a contact whose caps say +notify hears each event, a second resource gets the
    /// last items on coming online, a stranger is refused per access model; avatars convert between PEP and vCard
    /// (XEP-0398, with the XEP-0153 hash in presence), XEP-0048 bookmarks in private storage meet XEP-0402's on PEP,
    /// and a vCard4 (XEP-0292) is published and read.
    /// </summary>
    [Fact]
    public async Task Slixmpp_pubsub_plugins_publish_notify_configure_and_retrieve()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob", "carol" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");
        await RunScriptAsync(server, "pep_slixmpp.py", "alice@localhost", "alice-secret", "bob@localhost", "bob-secret",
            "carol@localhost", "carol-secret", "--timeout", "15");
    }

    /// <summary>
    /// scripts/omemo_clients.py exchange: two clients built on python-omemo (oldmemo and twomemo backends) over
    /// slixmpp publish their device lists and bundles on candor's PEP, hear each other's by +notify, and exchange
    /// encrypted messages both ways in eu.siacs.conversations.axolotl and in urn:xmpp:omemo:2.
    /// </summary>
    [Fact]
    public async Task Omemo_clients_exchange_encrypted_messages_in_both_namespaces()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");
        await RunScriptAsync(server, "omemo_clients.py", "exchange", "alice@localhost", "alice-secret", "bob@localhost", "bob-secret");
    }

    /// <summary>
    /// scripts/omemo_clients.py publish, a server restart, then after-restart: device lists and bundles survive the
    /// restart and are read by a contact and by a stranger (access model open); the stranger is refused a
    /// presence-model node, the contact a whitelist node; a message encrypted from the stored bundles decrypts.
    /// </summary>
    [Fact]
    public async Task Omemo_devices_and_pep_access_models_survive_a_restart()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob", "carol" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");
        var state = Directory.CreateTempSubdirectory("candor-omemo-").FullName;
        try
        {
            await RunScriptAsync(server, "omemo_clients.py", "publish", "alice@localhost", "alice-secret", "bob@localhost", "bob-secret",
                "--state", state);
            await server.StopAsync();
            await server.StartAsync();
            await RunScriptAsync(server, "omemo_clients.py", "after-restart", "alice@localhost", "alice-secret", "bob@localhost", "bob-secret",
                "--state", state, "--stranger", "carol@localhost", "carol-secret");
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }
}
