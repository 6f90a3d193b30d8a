using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// RFC 6121 §4.2.2 and §4.4.2, on the wire: initial and updated presence go to all of the user's available
/// resources, the one that sent it included. Clients wait for that reflection (slixmpp's XEP-0153 plugin does).
/// </summary>
public sealed class OwnPresenceTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static bool OwnPresence(Element e, XmppTestClient from, XmppTestClient to, string? show = null) =>
        e.IsPresence() && e.Type() is null && e.GetAttribute("from") == from.Full && e.GetAttribute("to") == to.Full
        && e.GetChildText("show", Ns.Client) == show;

    [Fact]
    public async Task Initial_presence_comes_back_to_the_resource_that_sent_it()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user, "only");

        await client.SendAsync("<presence><status>here</status></presence>");

        var echo = await client.ExpectAsync(e => OwnPresence(e, client, client));
        Assert.Equal("here", echo.GetChildText("status", Ns.Client));
    }

    [Fact]
    public async Task A_presence_update_reaches_every_available_resource_including_the_sender()
    {
        var user = await server.CreateUserAsync();
        await using var first = await server.LoginAsync(user, "first");
        await using var second = await server.LoginAsync(user, "second");
        await first.SendPresenceAsync();
        await second.SendPresenceAsync();

        await first.SendAsync("<presence><show>away</show></presence>");

        await first.ExpectAsync(e => OwnPresence(e, first, first, "away"));
        await second.ExpectAsync(e => OwnPresence(e, first, second, "away"));
    }

    [Fact]
    public async Task Unavailable_presence_goes_to_the_other_resources_only()
    {
        var user = await server.CreateUserAsync();
        await using var first = await server.LoginAsync(user, "first");
        await using var second = await server.LoginAsync(user, "second");
        await first.SendPresenceAsync();
        await second.SendPresenceAsync();

        await first.SendAsync("<presence type='unavailable'/>");

        await second.ExpectAsync(e => e.IsPresence() && e.Type() == "unavailable" && e.GetAttribute("from") == first.Full);
        // The sender is no longer available, so nothing is broadcast to it (RFC 6121 §4.5.2).
        await first.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsPresence() && e.Type() == "unavailable");
    }
}
