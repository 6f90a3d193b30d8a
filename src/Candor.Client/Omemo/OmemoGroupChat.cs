using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Client.Omemo;

/// <summary>
/// OMEMO in a group chat (XEP-0384 §6.1, as Conversations and Dino do it): only in a members-only, non-anonymous room
/// (XEP-0045), where every occupant's real JID is visible. A message goes to the room encrypted for the devices of
/// every occupant and every member (affiliations member, admin, owner: from the lists the room lets this account read,
/// occupants' presence and the room's notices of absent users' affiliation changes), by real JID, and for this
/// account's other devices; an incoming one is decrypted as coming from the sender's real JID.
/// </summary>
public sealed class OmemoGroupChat : IDisposable
{
    private const string Muc = "http://jabber.org/protocol/muc";
    private const string MucUser = Muc + "#user";
    private const string MucAdmin = Muc + "#admin";
    private const string DiscoInfo = "http://jabber.org/protocol/disco#info";

    private readonly XmppClient _client;
    private readonly OmemoClient _omemo;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Jid> _occupants = [];
    private readonly HashSet<Jid> _members = [];
    private readonly TaskCompletionSource<PresenceUpdate> _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private OmemoGroupChat(XmppClient client, OmemoClient omemo, Jid room, string nick)
    {
        _client = client;
        _omemo = omemo;
        Room = room;
        Nick = nick;
        client.EventReceived += OnEvent;
    }

    public Jid Room { get; }
    public string Nick { get; }

    /// <summary>The real bare JIDs messages are encrypted for: present occupants and listed members.</summary>
    public IReadOnlyCollection<Jid> Recipients
    {
        get
        {
            lock (_gate) return [.. _occupants.Values.Union(_members)];
        }
    }

    /// <summary>
    /// Enters <paramref name="room"/> as <paramref name="nick"/> once its disco#info says it is members-only and
    /// non-anonymous (else <see cref="OmemoException"/>: OMEMO cannot know who reads a room whose occupants it cannot
    /// see), then reads its member list where the room allows.
    /// </summary>
    public static async Task<OmemoGroupChat> JoinAsync(XmppClient client, OmemoClient omemo, Jid room, string nick, CancellationToken cancellation = default)
    {
        var disco = Stanza.CreateIq("get", null, null, room.Bare);
        disco.AddChild("query", DiscoInfo);
        var info = await client.IqAsync(disco, cancellation: cancellation);
        var features = info.GetChild("query", DiscoInfo)?.Elements.Where(f => f.Name == "feature").Select(f => f.GetAttribute("var")).ToHashSet() ?? [];
        if (!features.Contains("muc_membersonly") || !features.Contains("muc_nonanonymous"))
            throw new OmemoException($"{room.Bare} is not a members-only, non-anonymous room: OMEMO needs to know who can read it");

        var chat = new OmemoGroupChat(client, omemo, room.Bare, nick);
        var presence = new Element("presence", Ns.Client).SetAttribute("to", $"{room.Bare}/{nick}");
        presence.AddChild("x", Muc).AddChild("history").SetAttribute("maxstanzas", "0");
        await client.SendAsync(presence, cancellation);
        PresenceUpdate self;
        try
        {
            self = await chat._joined.Task.WaitAsync(client.Options.RequestTimeout, cancellation);
        }
        catch (TimeoutException)
        {
            chat.Dispose();
            throw new OmemoException($"{room.Bare} did not answer the request to join");
        }
        if (self.Error is { } error)
        {
            chat.Dispose();
            throw new XmppStanzaException(error, self.Stanza);
        }
        await chat.RefreshMembersAsync(cancellation);
        return chat;
    }

    private void OnEvent(XmppEvent e)
    {
        // XEP-0045 "Notifications of Changes": the affiliation of someone not in the room changed (Candor, Prosody).
        if (e is ChatMessage { Type: "normal" } m && m.From == Room)
        {
            if (m.Stanza.GetChild("x", MucUser)?.GetChild("item", MucUser) is { } changed) Affiliated(changed);
            return;
        }
        if (e is not PresenceUpdate p || p.From.Bare != Room || p.From.Resource is not { } nick) return;
        var x = p.Stanza.GetChild("x", MucUser);
        if (nick == Nick && (p.Error is not null || x?.Elements.Any(s => s.Name == "status" && s.GetAttribute("code") == "110") == true))
            _joined.TrySetResult(p);
        var item = x?.GetChild("item", MucUser);
        lock (_gate)
        {
            if (!p.Available) _occupants.Remove(nick);
            else if (item?.GetAttribute("jid") is { } jid && Jid.TryParse(jid, out var real)) _occupants[nick] = real.Bare;
        }
        if (item is not null) Affiliated(item);
    }

    /// <summary>Keeps the member list current from an item naming a real JID and its affiliation.</summary>
    private void Affiliated(Element item)
    {
        if (!Jid.TryParse(item.GetAttribute("jid"), out var jid)) return;
        lock (_gate)
        {
            if (item.GetAttribute("affiliation") is "member" or "admin" or "owner") _members.Add(jid.Bare);
            else _members.Remove(jid.Bare);
        }
    }

    /// <summary>Reads the member, admin and owner lists (XEP-0045 §9.5); a room that refuses them leaves the members already seen.</summary>
    public async Task RefreshMembersAsync(CancellationToken cancellation = default)
    {
        var members = new HashSet<Jid>();
        foreach (var affiliation in (string[])["member", "admin", "owner"])
        {
            var iq = Stanza.CreateIq("get", null, null, Room);
            iq.AddChild("query", MucAdmin).AddChild("item").SetAttribute("affiliation", affiliation);
            try
            {
                var result = await _client.IqAsync(iq, cancellation: cancellation);
                foreach (var item in result.GetChild("query", MucAdmin)?.Elements ?? [])
                    if (item.GetAttribute("jid") is { } jid && Jid.TryParse(jid, out var member)) members.Add(member.Bare);
            }
            catch (XmppStanzaException e) when (e.Error.Condition is "forbidden" or "not-allowed" or "feature-not-implemented")
            {
                return;
            }
        }
        lock (_gate)
        {
            _members.Clear();
            _members.UnionWith(members);
        }
    }

    /// <summary>Sends <paramref name="body"/> to the room, encrypted for every recipient's devices; returns the stanza.</summary>
    public async Task<Element> SendAsync(string body, CancellationToken cancellation = default)
    {
        var message = await _omemo.EncryptAsync(Room, Recipients, body, "groupchat", cancellation);
        await _client.SendAsync(message, cancellation);
        return message;
    }

    /// <summary>
    /// Decrypts a groupchat message from this room with its sender's real JID; null for a message without OMEMO, or
    /// the room's reflection of this device's own message (not encrypted for the device that sent it).
    /// </summary>
    public async Task<OmemoDecrypted?> DecryptAsync(ChatMessage message, CancellationToken cancellation = default)
    {
        if (message.From?.Bare != Room || message.From.Resource is not { } nick || nick == Nick) return null;
        Jid? sender;
        lock (_gate) sender = _occupants.GetValueOrDefault(nick);
        if (sender is null)
            return message.Stanza.GetChild("encrypted", OmemoClient.Namespace) is null && message.Stanza.GetChild("encrypted", OmemoClient.LegacyNamespace) is null
                ? null : new OmemoDecrypted(null, 0, Trust.Undecided, $"the real JID of {nick} is not known", false);
        return await _omemo.DecryptAsync(message.Stanza, sender, cancellation);
    }

    public void Dispose() => _client.EventReceived -= OnEvent;
}
