using System.Net;
using Candor.Server.Connections;
using Candor.Server.Hosting;
using Candor.Xmpp;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// Which half-open login is shed when the total cap is reached (issue 12 item 3): the one with the least
/// progress for the longest time, never one that just made progress while staler ones exist.
/// </summary>
public sealed class ConnectionLimitsTests
{
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1_000_000;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private sealed record Ended(string Name, string Condition, string Text);

    private readonly ManualClock _clock = new();
    private readonly List<Ended> _ended = [];
    private readonly ConnectionLimits _limits;
    private int _address;

    public ConnectionLimitsTests() =>
        _limits = new ConnectionLimits(new ServerOptions { MaxUnauthenticatedStreams = 3, MaxUnauthenticatedStreamsPerAddress = 2 }, _clock);

    private PendingLogin Enter(string name, IPAddress? address = null)
    {
        var login = _limits.TryEnter(address ?? IPAddress.Parse($"192.0.2.{++_address}"), (condition, text) => _ended.Add(new(name, condition, text)), out var reason);
        Assert.True(login is not null, reason);
        return login;
    }

    [Fact]
    public void At_the_cap_the_newcomer_is_admitted_and_the_stalest_of_the_lowest_phase_is_shed()
    {
        using var silent = Enter("silent");
        _clock.Advance(TimeSpan.FromSeconds(1));
        using var opened = Enter("opened");
        opened.Advance(LoginPhase.Opened);
        _clock.Advance(TimeSpan.FromSeconds(1));
        using var late = Enter("late silent");
        _clock.Advance(TimeSpan.FromSeconds(5));

        // "opened" has waited longer than "late silent" but got further: the oldest silent one goes first.
        using var newcomer = Enter("newcomer");
        Assert.Equal(3, _limits.Count);
        var shed = Assert.Single(_ended);
        Assert.Equal("silent", shed.Name);
        Assert.Equal(StreamErrors.ResourceConstraint, shed.Condition);

        using var next = Enter("next");
        Assert.Equal(["silent", "late silent"], _ended.Select(e => e.Name));
    }

    [Fact]
    public void A_login_that_just_made_progress_is_not_shed_for_one_that_made_less()
    {
        // Everything else stopped after its header long ago; the newest arrival has not sent its header yet.
        using var stalled1 = Enter("stalled 1");
        stalled1.Advance(LoginPhase.Opened);
        using var stalled2 = Enter("stalled 2");
        stalled2.Advance(LoginPhase.Negotiating);
        _clock.Advance(TimeSpan.FromSeconds(10));
        using var honest = Enter("honest");
        _clock.Advance(TimeSpan.FromMilliseconds(300));

        using var attacker = Enter("attacker");
        Assert.Equal("stalled 1", Assert.Single(_ended).Name);

        _clock.Advance(TimeSpan.FromMilliseconds(100));
        using var another = Enter("another");
        Assert.Equal(["stalled 1", "stalled 2"], _ended.Select(e => e.Name));

        // Once every stream made progress within the grace period, the longest-waiting one of the lowest phase goes:
        // the honest client, now in its TLS handshake, stays.
        _clock.Advance(TimeSpan.FromMilliseconds(100));
        honest.Advance(LoginPhase.Handshaking);
        using var third = Enter("third");
        Assert.Equal(["stalled 1", "stalled 2", "attacker"], _ended.Select(e => e.Name));
        using var fourth = Enter("fourth");
        Assert.Equal(["stalled 1", "stalled 2", "attacker", "another"], _ended.Select(e => e.Name));
    }

    [Fact]
    public void The_per_address_cap_refuses_the_newcomer_and_sheds_nobody()
    {
        var address = IPAddress.Parse("198.51.100.7");
        using var one = Enter("one", address);
        using var two = Enter("two", address);
        Assert.Null(_limits.TryEnter(address, (_, _) => Assert.Fail("the newcomer was ended"), out var reason));
        Assert.Contains("your address", reason);
        Assert.Empty(_ended);
    }

    [Fact]
    public void A_login_that_left_or_was_shed_is_counted_once()
    {
        var first = Enter("first");
        using var second = Enter("second");
        using var third = Enter("third");
        _clock.Advance(TimeSpan.FromSeconds(3));
        using var fourth = Enter("fourth");
        Assert.Equal("first", Assert.Single(_ended).Name);
        first.Dispose();
        first.Advance(LoginPhase.Opened);
        Assert.Equal(3, _limits.Count);

        second.Dispose();
        second.Dispose();
        Assert.Equal(2, _limits.Count);

        // Short of descriptors, only logins without progress for the grace period are shed.
        Assert.Equal(1, _limits.ShedStalest(5));
        Assert.Equal("third", _ended[^1].Name);
        _clock.Advance(ConnectionLimits.Grace);
        Assert.Equal(1, _limits.ShedStalest(5));
        Assert.Equal(0, _limits.Count);
    }
}
