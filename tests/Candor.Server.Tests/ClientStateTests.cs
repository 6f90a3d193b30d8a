using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Server.Tests;

/// <summary>Client State Indication (XEP-0352) over real sockets: what waits while inactive, what is coalesced, what flushes.</summary>
public sealed class ClientStateTests(ServerFixture server, ITestOutputHelper output) : IClassFixture<ServerFixture>
{
    private const string Csi = "urn:xmpp:csi:0";
    private const int Contacts = 5;
    private const int UpdatesEach = 6;

    private async Task<(XmppTestClient Watcher, List<XmppTestClient> Contacts)> PresenceScenarioAsync()
    {
        var user = await server.CreateUserAsync("watcher");
        var watcher = await server.LoginAsync(user, "phone");
        var contacts = new List<XmppTestClient>();
        for (var i = 0; i < Contacts; i++)
        {
            var name = await server.CreateUserAsync("contact");
            await server.BefriendAsync(user, name);
            var contact = await server.LoginAsync(name, "desk");
            await contact.SendPresenceAsync();
            contacts.Add(contact);
        }
        await watcher.SendPresenceAsync();
        for (var i = 0; i < Contacts; i++)
            await watcher.ExpectStanzaAsync("presence", p => p.GetAttribute("from")!.StartsWith("contact", StringComparison.Ordinal));
        return (watcher, contacts);
    }

    private static async Task ChurnAsync(List<XmppTestClient> contacts)
    {
        for (var round = 0; round < UpdatesEach; round++)
            foreach (var contact in contacts)
            {
                await contact.SendAsync($"<presence><show>{(round % 2 == 0 ? "away" : "dnd")}</show><status>round {round}</status></presence>");
                await contact.SendAsync($"<message to='{contact.Full}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
            }
        foreach (var contact in contacts) await contact.SyncAsync();
    }

    private static async Task<(int Stanzas, int Bytes)> DrainPresenceAsync(XmppTestClient client, int expected, TimeSpan quiet)
    {
        int stanzas = 0, bytes = 0;
        while (true)
        {
            Element presence;
            try
            {
                // Its own presence comes back to it (RFC 6121 §4.2.2); only the contacts' count.
                presence = await client.ExpectAsync(e => e.IsPresence() && e.GetAttribute("from") != client.Full,
                    stanzas < expected ? TimeSpan.FromSeconds(5) : quiet);
            }
            catch (Exception) when (stanzas >= expected)
            {
                return (stanzas, bytes);
            }
            stanzas++;
            bytes += Encoding.UTF8.GetByteCount(ElementWriter.ToXmlString(presence));
        }
    }

    [Fact]
    public async Task Offered_after_authentication()
    {
        await using var client = await server.LoginAsync(await server.CreateUserAsync());
        Assert.NotNull(client.Features!.GetChild("csi", Csi));
    }

    [Fact]
    public async Task Inactive_presence_waits_coalesced_until_a_message_with_a_body_and_is_measured_against_active()
    {
        // Active: every update arrives as it happens.
        var (active, activeContacts) = await PresenceScenarioAsync();
        await ChurnAsync(activeContacts);
        var (activeStanzas, activeBytes) = await DrainPresenceAsync(active, Contacts * UpdatesEach, TimeSpan.FromMilliseconds(300));
        Assert.Equal(Contacts * UpdatesEach, activeStanzas);

        // Inactive: nothing arrives during the churn; a message with a body brings the latest presence of each contact.
        var (inactive, contacts) = await PresenceScenarioAsync();
        await inactive.SendAsync($"<inactive xmlns='{Csi}'/>");
        await inactive.SyncAsync();
        await ChurnAsync(contacts);
        await inactive.ExpectNothingAsync(TimeSpan.FromMilliseconds(400), e => e.IsPresence() && e.GetAttribute("from") != inactive.Full);
        await contacts[0].SendMessageAsync(inactive.Full, "wake up");
        var message = await inactive.ExpectMessageAsync("wake up");
        var (inactiveStanzas, inactiveBytes) = await DrainPresenceAsync(inactive, Contacts, TimeSpan.FromMilliseconds(300));
        Assert.Equal(Contacts, inactiveStanzas);
        Assert.NotNull(message);

        output.WriteLine($"{Contacts} contacts x {UpdatesEach} presence updates and chat states (chat states go to the contacts themselves here):");
        output.WriteLine($"  active:   {activeStanzas} presence stanzas, {activeBytes} bytes, up to {activeStanzas} wake-ups");
        output.WriteLine($"  inactive: {inactiveStanzas} presence stanzas, {inactiveBytes} bytes, 1 wake-up (flushed with the message)");
        Assert.True(inactiveBytes * 3 < activeBytes, $"inactive {inactiveBytes} bytes, active {activeBytes}");
        foreach (var c in contacts.Concat(activeContacts)) await c.DisposeAsync();
        await active.DisposeAsync();
        await inactive.DisposeAsync();
    }

    [Fact]
    public async Task Chat_states_wait_and_becoming_active_flushes_them_in_order_with_stream_management_counting_right()
    {
        var alice = await server.CreateUserAsync("alice");
        await using var bob = await server.OnlineUserAsync("bob");
        await using var phone = await server.LoginAsync(alice, "phone");
        await phone.SendAsync("<enable xmlns='urn:xmpp:sm:3'/>");
        await phone.ExpectAsync(e => e.Is("enabled", "urn:xmpp:sm:3"));
        await phone.SendAsync($"<inactive xmlns='{Csi}'/>");
        // A round trip on the phone's stream: the server has taken <inactive/> before bob sends anything.
        await phone.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        await phone.ExpectAsync(e => e.Is("a", "urn:xmpp:sm:3"));
        foreach (var state in new[] { "composing", "paused", "composing", "active" })
            await bob.SendAsync($"<message to='{phone.Full}' type='chat'><{state} xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await bob.SendAsync($"<message to='{phone.Full}' type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>");
        await bob.SyncAsync();
        await phone.ExpectNothingAsync(TimeSpan.FromMilliseconds(400), e => e.IsMessage());

        await phone.SendAsync($"<active xmlns='{Csi}'/>");
        var first = await phone.ExpectStanzaAsync("message");
        var second = await phone.ExpectStanzaAsync("message");
        // The four chat states from bob coalesce into the last one, in its place; the receipt after it is kept.
        Assert.NotNull(first.GetChild("active", "http://jabber.org/protocol/chatstates"));
        Assert.NotNull(second.GetChild("received", "urn:xmpp:receipts"));
        await phone.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
        // Stream management counted only what was written: acking both is exactly right.
        await phone.SendAsync("<a xmlns='urn:xmpp:sm:3' h='2'/>");
        await phone.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        await phone.ExpectAsync(e => e.Is("a", "urn:xmpp:sm:3"));
    }
}
