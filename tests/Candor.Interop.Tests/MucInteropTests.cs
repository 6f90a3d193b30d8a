using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>Chat rooms (XEP-0045) driven by clients we did not write: slixmpp's xep_0045 plugin.</summary>
[Trait("Category", "Interop")]
public sealed class MucInteropTests(ITestOutputHelper output)
{
    /// <summary>
    /// scripts/muc_rooms.py: create and configure a room with the form, join with history (status 170), the room archive
    /// paged with xep_0313, nick conflict,
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

    /// <summary>
    /// scripts/muc_hats.py: hats (XEP-0317) with slixmpp's xep_0050 plugin running the room's don and doff commands, and
    /// the hat seen in the occupant's presence (slixmpp has no hats plugin of its own).
    /// </summary>
    [Fact]
    public async Task Slixmpp_puts_a_hat_on_an_occupant_with_the_rooms_ad_hoc_commands_and_takes_it_off()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var user in new[] { "alice", "bob" }) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("muc_hats.py"), CandorServer.Host, server.C2sPort.ToString(), "alice@localhost", "alice-secret",
             "bob@localhost", "bob-secret", "--room", "classroom@conference.localhost", "--timeout", "15"],
            TimeSpan.FromMinutes(3));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"muc_hats.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }

    /// <summary>
    /// profanity /join: a slixmpp occupant (scripts/muc_peer.py) creates the room; profanity joins it with /join,
    /// shows the occupant's message and answers in the room window, and the occupant receives the answer.
    /// </summary>
    [Fact]
    public async Task Profanity_joins_a_room_and_talks_with_a_slixmpp_occupant()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("carol@localhost", "carol-secret");
        const string room = "lounge@conference.localhost", peerSays = "carol says hi from slixmpp", answer = "profanity answers in the room";

        await using var peer = ChildProcess.Start(Tools.Python,
            [Tools.Script("muc_peer.py"), CandorServer.Host, server.C2sPort.ToString(), "carol@localhost", "carol-secret", room, "carol",
             "--say", peerSays, "--expect", answer, "--from", "prof", "--timeout", "90"]);
        Assert.True(await peer.WaitForOutputAsync("READY", ProfanitySession.StepTimeout), $"the peer did not create the room\n{peer.Output}\n{server.Transcript}");

        await using var profanity = await ProfanitySession.LoginAsync(server, "alice@localhost", "alice-secret");
        await profanity.Tmux.SendLineAsync($"/join {room} nick prof");
        Assert.True(await profanity.Tmux.WaitForAnyAsync(ProfanitySession.StepTimeout, peerSays) is not null,
            await profanity.ContextAsync("profanity did not show the occupant's message", peer.Output));
        await profanity.Tmux.SendLineAsync(answer);

        Assert.True(await peer.WaitForExitAsync(TimeSpan.FromSeconds(60)), await profanity.ContextAsync("the peer did not finish", peer.Output));
        Assert.True(peer.ExitCode == 0, await profanity.ContextAsync($"the peer exited with {peer.ExitCode}", peer.Output));
        Assert.Contains("RECEIVED", peer.Output);
        output.WriteLine(await profanity.Tmux.CaptureAsync());
    }
}
