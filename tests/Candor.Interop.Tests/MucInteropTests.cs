using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>Chat rooms (XEP-0045) driven by clients we did not write: slixmpp's xep_0045 plugin.</summary>
[Trait("Category", "Interop")]
public sealed class MucInteropTests(ITestOutputHelper output)
{
    /// <summary>
    /// scripts/muc_rooms.py: create and configure a room with the form, join with history, nick conflict,
    /// subject, groupchat, kick with reason, ban, leave, destroy — each step through slixmpp's own plugin.
    /// </summary>
    [Fact]
    public async Task Slixmpp_creates_configures_joins_kicks_bans_and_destroys_a_room()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob", "carol" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("muc_rooms.py"), CandorServer.Host, server.C2sPort.ToString(), "lounge@conference.localhost",
             "alice@localhost", "alice-secret", "bob@localhost", "bob-secret", "carol@localhost", "carol-secret", "--timeout", "15"],
            TimeSpan.FromMinutes(4));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"muc_rooms.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }
}
