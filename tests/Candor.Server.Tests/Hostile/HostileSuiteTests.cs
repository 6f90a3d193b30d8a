using Candor.Server.Tests.Harness;

namespace Candor.Server.Tests.Hostile;

public static partial class HostileCases
{
    public static IReadOnlyList<HostileCase> All { get; } = [.. Xml(), .. Limits(), .. Stream(), .. Sasl(), .. Sasl2(), .. Abuse()];

    public static HostileCase Find(string id) => All.Single(c => c.Id == id);
}

/// <summary>
/// The hostile-input suite (issue 8): each case on its own connection to the shared server, the exact answer the
/// RFC prescribes asserted by the case, then the honest pair shown to be still served. The fixture checks at the end
/// that the pair lost no message over the whole suite.
/// </summary>
[Collection(HostileCollection.Name)]
public sealed class HostileSuiteTests(HostileServer suite)
{
    public static TheoryData<string> CaseIds() => [.. HostileCases.All.Select(c => c.Id)];

    [Theory]
    [MemberData(nameof(CaseIds))]
    public async Task Case(string id)
    {
        var hostile = HostileCases.Find(id);
        await using var client = hostile.Stage switch
        {
            Stage.Tcp => await XmppTestClient.ConnectTcpAsync(suite.C2sPort),
            Stage.Opened => await XmppTestClient.ConnectAsync(suite.C2sPort),
            Stage.Secure => await SecureAsync(),
            Stage.LoggedIn => await suite.LoginMalloryAsync(),
            _ => null,
        };
        await hostile.Run(new CaseContext(suite, client));
        await suite.AssertPairStillServedAsync();
    }

    [Fact]
    public void The_suite_has_at_least_200_distinct_cases()
    {
        Assert.Equal(HostileCases.All.Count, HostileCases.All.Select(c => c.Id).Distinct().Count());
        Assert.True(HostileCases.All.Count >= 200, $"{HostileCases.All.Count} cases");
    }

    private async Task<XmppTestClient> SecureAsync()
    {
        var client = await XmppTestClient.ConnectAsync(suite.C2sPort);
        await client.StartTlsAsync();
        return client;
    }
}
