using Candor.Server.Modules.Roster;

namespace Candor.Server.Tests.Harness;

public static class FixtureExtensions
{
    /// <summary>Makes two accounts subscribed both ways, directly in their rosters (setup, not under test).</summary>
    public static async Task BefriendAsync(this ServerFixture server, string a, string b)
    {
        var rosters = server.Host.Server.Rosters;
        await rosters.SaveAsync(a, new RosterItem { Jid = b + "@localhost", Subscription = Subscription.Both });
        await rosters.SaveAsync(b, new RosterItem { Jid = a + "@localhost", Subscription = Subscription.Both });
    }
}
