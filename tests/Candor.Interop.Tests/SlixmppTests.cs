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
}
