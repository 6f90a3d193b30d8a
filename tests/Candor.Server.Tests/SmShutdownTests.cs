using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// XEP-0198 and a clean shutdown: a session whose connection vanished and that is still waiting to be resumed is
/// ended by the shutdown, and the messages its client never acknowledged are stored offline, not lost.
/// </summary>
public sealed class SmShutdownTests
{
    private const string Sm = "urn:xmpp:sm:3";

    [Fact]
    public async Task Unacknowledged_messages_of_a_detached_session_are_stored_offline_on_shutdown()
    {
        var data = Directory.CreateTempSubdirectory("candor-sm-shutdown-").FullName;
        try
        {
            string alice;
            await using (var first = await ServerFixture.StartAsync(o => { o.DataDirectory = data; o.SmResumeTimeoutSeconds = 600; }))
            {
                alice = await first.CreateUserAsync("alice");
                await using var bob = await first.OnlineUserAsync("bob");
                var phone = await first.LoginAsync(alice, "phone");
                await phone.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
                Assert.Equal("enabled", (await phone.ExpectAsync(e => e.Namespace == Sm)).Name);
                await bob.SendMessageAsync($"{alice}@localhost/phone", "delivered, never acknowledged");
                await phone.ExpectAsync(e => e.IsMessage() && e.GetChildText("body", Ns.Client) is not null);
                phone.Abort();
                await Task.Delay(300);
                await bob.SendMessageAsync($"{alice}@localhost/phone", "queued while detached");
                await bob.SyncAsync();
                Assert.Equal(1, first.Host.Server.StreamManagement.Count);
                await phone.DisposeAsync();
            }

            await using var second = await ServerFixture.StartAsync(o => o.DataDirectory = data);
            await using var again = await second.LoginAsync(alice, "laptop");
            await again.SendPresenceAsync();
            var bodies = new List<string>();
            for (var i = 0; i < 2; i++)
                bodies.Add((await again.ExpectAsync(e => e.IsMessage() && e.GetChildText("body", Ns.Client) is not null)).GetChildText("body", Ns.Client)!);
            Assert.Equal(["delivered, never acknowledged", "queued while detached"], bodies);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
