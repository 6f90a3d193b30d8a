using System.Runtime.CompilerServices;
using Candor.Client;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Harness;

/// <summary>
/// Feature tests talk to the server through Candor.Client's <see cref="XmppClient"/> (made by
/// <see cref="ServerFixture.ClientAsync"/>). Its events are queued from the moment it is made, and
/// <see cref="ExpectAsync"/> takes the first queued event of a type matching a predicate.
/// </summary>
public static class LibraryClientExtensions
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private static readonly ConditionalWeakTable<XmppClient, Inbox<XmppEvent>> Inboxes = new();

    extension(XmppClient client)
    {
        public Jid Full => client.BoundJid!;
        public Jid Bare => client.BoundJid!.Bare;
    }

    /// <summary>Queues the client's events from now on; login notices only if <paramref name="loginNotices"/>.</summary>
    internal static void RecordEvents(this XmppClient client, bool loginNotices)
    {
        var inbox = new Inbox<XmppEvent>(e => e is ConnectionStateChanged { State: ConnectionState.Disconnected });
        Inboxes.Add(client, inbox);
        client.EventReceived += e =>
        {
            var notice = e is ChatMessage m && m.Stanza.GetChild("login", XmppTestClient.LoginNoticeNamespace) is not null;
            if (loginNotices || !notice) inbox.Post(e);
        };
    }

    /// <summary>Takes the first event of type <typeparamref name="T"/> matching <paramref name="match"/>, waiting up to the timeout.</summary>
    public static async Task<T> ExpectAsync<T>(this XmppClient client, Func<T, bool>? match = null, TimeSpan? timeout = null)
        where T : XmppEvent =>
        (T)await InboxOf(client).ExpectAsync(e => Matches(e, match), timeout ?? Timeout);

    private static bool Matches<T>(XmppEvent e, Func<T, bool>? match) where T : XmppEvent => e is T t && (match?.Invoke(t) ?? true);

    /// <summary>Asserts that no stanza matching <paramref name="match"/> arrives within the window, whatever event the
    /// library makes of it.</summary>
    public static Task ExpectNoStanzaAsync(this XmppClient client, TimeSpan window, Func<Element, bool> match) =>
        InboxOf(client).ExpectNothingAsync(e => StanzaOf(e) is { } stanza && match(stanza), window);

    private static Element? StanzaOf(XmppEvent e) => e switch
    {
        ChatMessage m => m.Stanza,
        PresenceUpdate p => p.Stanza,
        SubscriptionEvent s => s.Stanza,
        RosterPush r => r.Stanza,
        OtherStanza o => o.Stanza,
        _ => null,
    };

    private static Inbox<XmppEvent> InboxOf(XmppClient client) => Inboxes.TryGetValue(client, out var inbox)
        ? inbox
        : throw new InvalidOperationException("the client was not made by ServerFixture.ClientAsync");

    /// <summary>A message with that body.</summary>
    public static Task<ChatMessage> ExpectMessageAsync(this XmppClient client, string body) =>
        client.ExpectAsync<ChatMessage>(m => m.Body == body);

    /// <summary>Available (or unavailable) presence from exactly <paramref name="from"/>, full or bare.</summary>
    public static Task<PresenceUpdate> ExpectPresenceAsync(this XmppClient client, Jid from, bool available = true) =>
        client.ExpectAsync<PresenceUpdate>(p => p.From == from && p.Available == available && p.Error is null);

    /// <summary>A subscription presence of that kind from exactly <paramref name="from"/> (the library reports the bare JID of any sender).</summary>
    public static Task<SubscriptionEvent> ExpectSubscriptionAsync(this XmppClient client, Jid from, SubscriptionKind kind) =>
        client.ExpectAsync<SubscriptionEvent>(s => s.Kind == kind && s.Stanza.GetAttribute("from") == from.ToString());

    /// <summary>A roster push about <paramref name="jid"/>; the library checks that it comes from the account and acknowledges it.</summary>
    public static Task<RosterPush> ExpectRosterPushAsync(this XmppClient client, Jid jid, Func<RosterItem, bool>? match = null) =>
        client.ExpectAsync<RosterPush>(p => p.Item.Jid == jid && (match?.Invoke(p.Item) ?? true));

    /// <summary>Sends available presence and waits until the server has processed it.</summary>
    public static async Task BecomeAvailableAsync(this XmppClient client, int? priority = null)
    {
        await client.SendPresenceAsync(priority: priority);
        await client.PingAsync();
    }

    /// <summary>Asserts the session ends with the stream error <paramref name="condition"/>.</summary>
    public static async Task ExpectStreamErrorAsync(this XmppClient client, string condition)
    {
        var ended = await client.Ended.WaitAsync(Timeout);
        Assert.Equal(condition, Assert.IsType<XmppStreamErrorException>(ended).Condition);
    }

    // Stanzas the library has no typed call for, written as XML in the jabber:client namespace.

    public static Task SendAsync(this XmppClient client, string xml) => client.SendAsync(Parse(xml));

    /// <summary>An IQ request (the library sets its id) and its result; an error answer throws <see cref="XmppStanzaException"/>.</summary>
    public static Task<Element> IqAsync(this XmppClient client, string xml) => client.IqAsync(Parse(xml));

    /// <summary>An IQ request that must be answered with an error: returns the error stanza.</summary>
    public static async Task<Element> IqErrorAsync(this XmppClient client, string xml) =>
        (await Assert.ThrowsAsync<XmppStanzaException>(() => client.IqAsync(xml))).Stanza;

    private static Element Parse(string xml) => StoredStanza.Parse($"<stanzas xmlns='jabber:client'>{xml}</stanzas>").FirstElement!;
}
