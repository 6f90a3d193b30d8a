using System.Net;
using Candor.Server.Hosting;

namespace Candor.Server.Tests;

/// <summary>Who may read /metrics: loopback always, others only when MetricsAllow names their address or network.</summary>
public sealed class MetricsAllowTests
{
    [Theory]
    [InlineData("127.0.0.1", "", true)]
    [InlineData("::1", "", true)]
    [InlineData("::ffff:127.0.0.1", "", true)]
    [InlineData("192.0.2.10", "", false)]
    [InlineData("192.0.2.10", "192.0.2.0/24", true)]
    [InlineData("::ffff:192.0.2.10", "192.0.2.0/24", true)]
    [InlineData("198.51.100.1", "192.0.2.0/24, 2001:db8::/32", false)]
    [InlineData("2001:db8::5", "192.0.2.0/24, 2001:db8::/32", true)]
    [InlineData("203.0.113.7", "203.0.113.7", true)]
    [InlineData("203.0.113.8", "203.0.113.7", false)]
    public void Loopback_and_the_listed_networks_only(string address, string allow, bool allowed)
    {
        var options = new ServerOptions { MetricsAllow = allow };
        Assert.Equal(allowed, MetricsEndpoint.IsAllowed(IPAddress.Parse(address), options.ParseMetricsAllow()));
    }

    [Fact]
    public void A_malformed_entry_stops_the_start()
    {
        var options = new ServerOptions { MetricsAllow = "192.0.2.0/24, intranet" };
        var error = Assert.Throws<OptionsException>(options.Validate);
        Assert.Contains("'intranet'", error.Message);
    }
}
