using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>slixmpp (Debian python3-slixmpp) against a real candor server.</summary>
[Trait("Category", "Interop")]
public sealed class SlixmppTests(ITestOutputHelper output)
{
    /// <summary>
    /// scripts/two_users.py: STARTTLS with the self-signed certificate, SCRAM-SHA-256 only,
    /// mutual subscription, presence both ways, chat both ways, then an offline message
    /// delivered with a XEP-0203 delay on the next login.
    /// </summary>
    [Fact]
    public async Task Two_users_subscribe_chat_and_get_offline_messages()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("two_users.py"), CandorServer.Host, server.C2sPort.ToString(),
             "alice@localhost", "alice-secret", "bob@localhost", "bob-secret",
             "--mechanism", "SCRAM-SHA-256", "--timeout", "15"],
            TimeSpan.FromMinutes(4));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"two_users.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }

    /// <summary>
    /// scripts/mam_paging.py: slixmpp's xep_0313 plugin pages through an archive of 65 messages forward (RSM after) and
    /// backward (RSM before) in pages of 25, and filters it by 'with' and by start and end time.
    /// </summary>
    [Fact]
    public async Task Mam_pages_through_the_archive_both_ways_and_filters_by_with_and_time()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var name in new[] { "alice", "bob", "carol" })
            await server.AddUserAsync($"{name}@localhost", "pw-" + name);

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("mam_paging.py"), CandorServer.Host, server.C2sPort.ToString(), CandorServer.Domain, "pw-",
             "--count", "60", "--page", "25", "--timeout", "20"],
            TimeSpan.FromMinutes(4));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"mam_paging.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("4 backward: ok", result.Output);
        Assert.Contains("PASS", result.Output);
    }
}
