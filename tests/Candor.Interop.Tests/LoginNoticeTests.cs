using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>Promise 3 (every login announced), through slixmpp against a real candor server.</summary>
[Trait("Category", "Interop")]
public sealed class LoginNoticeTests(ITestOutputHelper output)
{
    /// <summary>
    /// scripts/login_notices.py: notice to the other session with resource and address, XEP-0494 list and
    /// revoke (the revoked stream ends, its next login is announced again), a notice stored while nobody is
    /// online, and forged 'from' addresses refused with nothing delivered.
    /// </summary>
    [Fact]
    public async Task New_logins_are_announced_listed_and_revocable()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("carol@localhost", "carol-secret");
        await server.AddUserAsync("dave@localhost", "dave-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("login_notices.py"), CandorServer.Host, server.C2sPort.ToString(),
             "carol@localhost", "carol-secret", "dave@localhost", "dave-secret", "--timeout", "15"],
            TimeSpan.FromMinutes(4));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"login_notices.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);

        var sessions = await server.RunCliAsync("user", "sessions", "carol@localhost");
        Assert.True(sessions.Succeeded, sessions.Describe());
        Assert.Contains("desktop-", sessions.Output);
        Assert.Contains("127.0.0.1", sessions.Output);
    }
}
