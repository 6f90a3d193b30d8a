using System.Net;
using Candor.Server.Connections;
using Candor.Server.Core;
using Candor.Server.Hosting;

namespace Candor.Server.Tests.Hostile;

/// <summary>Per-address limits count an IPv6 /64 as one address: a host picking fresh interface identifiers gains nothing.</summary>
public sealed class AddressKeyTests
{
    [Theory]
    [InlineData("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2::")]
    [InlineData("fe80::1234:5678", "fe80::")]
    [InlineData("::1", "::1")]
    [InlineData("192.0.2.7", "192.0.2.7")]
    [InlineData("::ffff:192.0.2.7", "192.0.2.7")]
    public void The_key_of_an_address(string address, string key) =>
        Assert.Equal(IPAddress.Parse(key), AddressKeys.Of(IPAddress.Parse(address)));

    [Fact]
    public void Unauthenticated_streams_from_one_slash_64_share_one_allowance()
    {
        var limits = new ConnectionLimits(new ServerOptions { MaxUnauthenticatedStreamsPerAddress = 2 });
        using var first = limits.TryEnter(IPAddress.Parse("2001:db8::1"), (_, _) => { }, out _);
        using var second = limits.TryEnter(IPAddress.Parse("2001:db8::2"), (_, _) => { }, out _);
        Assert.NotNull(second);
        Assert.Null(limits.TryEnter(IPAddress.Parse("2001:db8::3"), (_, _) => { }, out var reason));
        Assert.Contains("unauthenticated", reason);
        using var other = limits.TryEnter(IPAddress.Parse("2001:db8:0:1::1"), (_, _) => { }, out _);
        Assert.NotNull(other);
        first!.Dispose();
        using var fourth = limits.TryEnter(IPAddress.Parse("2001:db8::4"), (_, _) => { }, out _);
        Assert.NotNull(fourth);
    }

    [Fact]
    public void Failed_logins_from_one_slash_64_add_up()
    {
        var throttle = new Candor.Server.Accounts.AuthThrottle(TimeProvider.System);
        for (var i = 1; i <= 5; i++) throttle.RecordFailure(IPAddress.Parse($"2001:db8::{i}"), null);
        Assert.True(throttle.DelayFor(IPAddress.Parse("2001:db8::99"), null) > TimeSpan.Zero);
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor(IPAddress.Parse("2001:db8:0:1::1"), null));
    }
}
