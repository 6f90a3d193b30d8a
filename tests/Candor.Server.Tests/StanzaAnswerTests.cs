using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// DESIGN.md promise 1 on the wire: presence for a domain this server does not serve is answered with
/// remote-server-not-found (RFC 6120 §10.4.3), and each stanza that docs/PROTOCOLS.md lists under "Stanzas that get
/// no answer" indeed gets none, while the stream stays usable.
/// </summary>
public sealed class StanzaAnswerTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Unserved = "rooms.example.net";

    public static TheoryData<string, string> PresenceToUnservedDomains => new()
    {
        { "a group chat join", $"<presence to='lobby@{Unserved}/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>" },
        { "directed presence", $"<presence to='someone@{Unserved}'/>" },
        { "directed unavailable presence", $"<presence to='someone@{Unserved}' type='unavailable'/>" },
        { "a subscription request", $"<presence to='someone@{Unserved}' type='subscribe'/>" },
        { "a probe", $"<presence to='someone@{Unserved}' type='probe'/>" },
    };

    [Theory]
    [MemberData(nameof(PresenceToUnservedDomains))]
    public async Task Presence_to_a_domain_not_served_here_gets_remote_server_not_found(string what, string presence)
    {
        await using var client = await server.OnlineUserAsync();

        await client.SendAsync(presence);

        var error = await client.ExpectAsync(e => e.IsPresence() && e.Type() == "error");
        error.AssertError("remote-server-not-found", "cancel");
        Assert.EndsWith(Unserved, Jid.Parse(error.GetAttribute("from")!).Domain);
        Assert.True(error.GetAttribute("to") is { } to && Jid.Parse(to).Bare.ToString() == client.Bare, what);
    }

    [Theory]
    [InlineData("subscribe")]
    [InlineData("subscribed")]
    [InlineData("probe")]
    public async Task Subscription_presence_or_a_probe_without_to_is_a_bad_request(string type)
    {
        await using var client = await server.OnlineUserAsync();

        await client.SendAsync($"<presence type='{type}'/>");

        var error = await client.ExpectAsync(e => e.IsPresence() && e.Type() == "error");
        error.AssertError("bad-request", "modify");
        Assert.Equal(client.Full, error.GetAttribute("to"));
    }

    [Fact]
    public async Task A_probe_of_a_subscribed_contact_with_no_available_resource_gets_unavailable()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var client = await server.LoginAsync(alice);
        await client.SendPresenceAsync();

        await client.SendAsync($"<presence to='{bob}@localhost' type='probe'/>");

        // RFC 6121 §4.3.2: no available resource, so the last word is unavailable.
        await client.ExpectAsync(e => e.IsPresence() && e.Type() == "unavailable" && e.GetAttribute("from") == $"{bob}@localhost");
    }

    [Fact]
    public async Task A_probe_the_contact_does_not_honour_ends_a_stale_subscription()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        // alice's roster says she sees bob; bob's roster knows nothing of it.
        await server.Host.Server.Rosters.SaveAsync(alice, new Modules.Roster.RosterItem { Jid = bob + "@localhost", Subscription = Modules.Roster.Subscription.To });
        await using var client = await server.LoginAsync(alice);
        await client.SendPresenceAsync();

        await client.SendAsync($"<presence to='{bob}@localhost' type='probe'/>");

        await client.ExpectAsync(e => e.IsPresence() && e.Type() == "unsubscribed" && e.GetAttribute("from") == $"{bob}@localhost");
        Assert.Equal(Modules.Roster.Subscription.None, (await server.Host.Server.Rosters.GetAsync(alice, Jid.Parse(bob + "@localhost")))!.Subscription);
    }

    /// <summary>The cases docs/PROTOCOLS.md lists, each with the RFC paragraph that allows the silence.</summary>
    public static TheoryData<string, string> Unanswered => new()
    {
        // RFC 6120 §8.3.1: an error is never answered with an error.
        { "a message error to an unserved domain", $"<message to='x@{Unserved}' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>" },
        { "a presence error to an unserved domain", $"<presence to='x@{Unserved}' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>" },
        // RFC 6120 §8.2.3: an IQ response is not answered.
        { "an IQ result to the server", "<iq to='localhost' type='result' id='r1'/>" },
        { "an IQ result to a resource that is gone", "<iq to='{other}/gone' type='result' id='r2'/>" },
        { "an IQ error to an account", "<iq to='{other}' type='error' id='r3'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>" },
        // RFC 6121 §8.5.2.2.2 and §8.5.3.2.2: availability presence for an account with no available resource.
        { "available presence to an offline account", "<presence to='{other}'/>" },
        { "available presence to a resource that is gone", "<presence to='{other}/gone'/>" },
        // RFC 6121 §3.4: an approval before any request is a pre-approval, kept and not routed.
        { "a pre-approval", "<presence to='{other}' type='subscribed'/>" },
        // RFC 6121 §3.3.3 and §3.2.3: an unsubscribe or unsubscribed that ends no subscription is ignored by the
        // contact's server.
        { "an unsubscribe without a subscription", "<presence to='{other}' type='unsubscribe'/>" },
        { "an unsubscribed without a subscription", "<presence to='{other}' type='unsubscribed'/>" },
        // RFC 6121 §4.3.2 and §3.2.3: a probe from someone not subscribed is answered 'unsubscribed', which the
        // prober's own server then ignores as it cancels nothing.
        { "a probe without a subscription", "<presence to='{other}' type='probe'/>" },
        // RFC 6121 §8.5.2.2.1: a headline for an account with no available resource is not stored.
        { "a headline to an offline account", "<message to='{other}' type='headline'><body>news</body></message>" },
        // RFC 6120 §10.3: presence to the server itself; the server keeps no presence state of its own.
        { "presence to the server", "<presence to='localhost'/>" },
        // Nothing refused: a resource that is not available has nothing to withdraw (RFC 6121 §4.5.2).
        { "unavailable presence twice", "<presence type='unavailable'/><presence type='unavailable'/>" },
    };

    [Theory]
    [MemberData(nameof(Unanswered))]
    public async Task Stanzas_the_RFCs_leave_unanswered_get_no_answer_and_the_stream_goes_on(string what, string stanza)
    {
        var other = await server.CreateUserAsync("other");
        await using var client = await server.OnlineUserAsync();
        await client.ExpectAsync(e => e.IsPresence() && e.GetAttribute("from") == client.Full);

        await client.SendAsync(stanza.Replace("{other}", $"{other}@localhost"));

        var answer = await Record.ExceptionAsync(() => client.ExpectNothingAsync(TimeSpan.FromMilliseconds(400)));
        Assert.True(answer is null, $"{what}: {answer?.Message}");
        await client.SyncAsync();
    }
}
