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
    /// scripts/pep_slixmpp.py: slixmpp's xep_0060/0163/0115/0084/0172/0222/0223 plugins publish, configure,
    /// retract, purge and delete; a contact whose caps say +notify hears each event, a second resource gets the
    /// last items on coming online, a stranger is refused per access model.
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
}
