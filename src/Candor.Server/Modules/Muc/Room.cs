using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Core;
using Candor.Server.Modules.AdHoc;
using Candor.Server.Modules.Archive;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// One chat room (XEP-0045): its configuration, affiliations, occupants, subject and history. Every stanza for
/// the room is handled under <see cref="Gate"/>, one at a time, so the room's state needs no other locking.
/// The aspects are in partial files: Occupants (entering, leaving, nicks), Admin (roles, affiliations,
/// configuration, destruction), Invitations (with voice requests) and Registration.
/// </summary>
public sealed partial class Room
{
    public const string MucNs = "http://jabber.org/protocol/muc";
    public const string UserNs = MucNs + "#user";
    public const string AdminNs = MucNs + "#admin";
    public const string OwnerNs = MucNs + "#owner";
    public const string OccupantIdNs = "urn:xmpp:occupant-id:0";
    public const string StanzaIdNs = "urn:xmpp:sid:0";
    public const string ArchivedField = "candor#roominfo_archived";
    public const string ArchiveRetentionField = "candor#roominfo_archiveretentiondays";

    private readonly MucService _service;
    private readonly Dictionary<string, Occupant> _byNick = new(StringComparer.Ordinal);
    private readonly Dictionary<Jid, Occupant> _byJid = [];
    /// <summary>Affiliations other than none, by bare JID.</summary>
    private readonly Dictionary<Jid, Affiliation> _affiliations = [];
    /// <summary>Nicks registered with the room (XEP-0045 §7.10), by bare JID.</summary>
    private readonly Dictionary<Jid, string> _registeredNicks = [];
    /// <summary>The occupants in an array replaced on change, for fan-out without copying.</summary>
    private Occupant[] _occupants = [];
    private byte[] _secret;

    public Room(MucService service, Jid jid, byte[]? secret = null)
    {
        _service = service;
        Jid = jid;
        _secret = secret ?? RandomNumberGenerator.GetBytes(32);
        Config = new RoomConfig { Archived = service.Server.Options.MucArchiveByDefault };
    }

    public Jid Jid { get; }
    public RoomConfig Config { get; private set; }
    public SemaphoreSlim Gate { get; } = new(1, 1);
    public History History { get; } = new();
    public string Subject { get; private set; } = "";
    public string? SubjectNick { get; private set; }
    /// <summary>Created and not yet configured by its owner: nobody else may enter (XEP-0045 §10.1.2).</summary>
    public bool Locked { get; set; }
    public bool Destroyed { get; set; }
    public int OccupantCount => _occupants.Length;
    private XmppServer Server => _service.Server;

    public void SetAffiliation(Jid bareJid, Affiliation affiliation) => _affiliations[bareJid] = affiliation;

    public Affiliation AffiliationOf(Jid jid) => _affiliations.GetValueOrDefault(jid.Bare, Affiliation.None);

    public Occupant? OccupantByJid(Jid realJid) => _byJid.GetValueOrDefault(realJid);

    // ---- sending ----

    /// <summary>
    /// Hands a stanza to an occupant's session. An occupant whose session has gone is removed when it ends. An occupant
    /// of another server gets it over federation, queued in order on the stream to that server; what cannot be
    /// delivered comes back as an error from its real JID, which takes it out of the room (status 333).
    /// </summary>
    private void Send(Occupant to, Element stanza)
    {
        if (!to.IsRemote)
        {
            Server.Sessions.Get(to.RealJid)?.Send(stanza);
            return;
        }
        var routed = Server.Router.DeliverAsync(stanza, Jid.Parse(stanza.GetAttribute("from")!), to.RealJid);
        // Federation queues synchronously; only setting up a stream or answering an error goes on after this returns.
        if (!routed.IsCompleted) _ = routed.AsTask();
    }

    private Element ToOccupant(string name, Occupant to, string? from = null) =>
        new Element(name, Ns.Client).SetAttribute("from", from ?? Jid.ToString()).SetAttribute("to", to.RealJidText);

    /// <summary>Whether <paramref name="viewer"/> sees real JIDs: everybody in a non-anonymous room, moderators in any.</summary>
    private bool SeesJids(Occupant viewer) => Config.NonAnonymous || viewer.IsModerator;

    /// <summary>
    /// The presence of <paramref name="occupant"/> as <paramref name="viewer"/> gets it (XEP-0045 §7.2.3): the
    /// occupant's own presence content, the muc#user item and the status codes; 110 when it is the viewer's own.
    /// </summary>
    private Element PresenceFor(Occupant occupant, Occupant viewer, bool available, ReadOnlySpan<int> codes,
        Action<Element>? decorateItem = null, string? nick = null)
    {
        var presence = ToOccupant("presence", viewer, Jid.WithResource(nick ?? occupant.Nick).ToString());
        if (!available) presence.SetAttribute("type", "unavailable");
        else
            foreach (var child in occupant.PresenceContent)
                presence.Add(child);
        presence.AddChild("occupant-id", OccupantIdNs).SetAttribute("id", occupant.OccupantId);
        var x = presence.AddChild("x", UserNs);
        var item = x.AddChild("item")
            .SetAttribute("affiliation", Roles.Name(occupant.Affiliation))
            .SetAttribute("role", Roles.Name(available ? occupant.Role : Role.None));
        if (SeesJids(viewer)) item.SetAttribute("jid", occupant.RealJidText);
        decorateItem?.Invoke(item);
        foreach (var code in codes) x.AddChild("status").SetAttribute("code", code.ToString());
        // The viewer's own presence, or that of another of its sessions under the same nick (multi-session nicks).
        if (occupant == viewer || occupant.Nick == viewer.Nick && occupant.RealJid.Bare == viewer.RealJid.Bare)
            x.AddChild("status").SetAttribute("code", "110");
        if (available && HatsOf(occupant) is { } hats) presence.Add(hats);
        return presence;
    }

    /// <summary>Sends the occupant's presence to everyone in the room, themselves included.</summary>
    private void BroadcastPresence(Occupant occupant, bool available, ReadOnlySpan<int> codes = default,
        Action<Element>? decorateItem = null, string? nick = null)
    {
        foreach (var viewer in _occupants)
            Send(viewer, PresenceFor(occupant, viewer, available, codes, decorateItem, nick));
        if (!available && Array.IndexOf(_occupants, occupant) < 0)
            Send(occupant, PresenceFor(occupant, occupant, available, codes, decorateItem, nick));
    }

    /// <summary>A message from the room itself (status codes, notices) to every occupant.</summary>
    private void BroadcastStatus(params int[] codes)
    {
        foreach (var occupant in _occupants)
        {
            var message = ToOccupant("message", occupant).SetAttribute("type", "groupchat");
            var x = message.AddChild("x", UserNs);
            foreach (var code in codes) x.AddChild("status").SetAttribute("code", code.ToString());
            Send(occupant, message);
        }
    }

    // ---- messages ----

    /// <summary>
    /// A groupchat message from an occupant (XEP-0045 §7.4), or a subject change (§8.1): its content is
    /// serialized once and the same bytes go to every occupant, each with its own envelope.
    /// </summary>
    public async ValueTask GroupchatAsync(StanzaEvent ev)
    {
        var sender = OccupantByJid(ev.From);
        if (sender is null)
        {
            await ev.ReplyErrorAsync(StanzaError.NotAcceptable, "only occupants may send messages to the room");
            return;
        }
        if (sender.Role < Role.Participant)
        {
            await ev.ReplyErrorAsync(StanzaError.Forbidden, "visitors have no voice in this moderated room");
            return;
        }
        var stanza = ev.Stanza;
        if (await RefusedByRoomRuleAsync(ev)) return;
        var subject = stanza.GetChild("subject", Ns.Client);
        var isSubjectChange = subject is not null && stanza.GetChild("body", Ns.Client) is null;
        if (isSubjectChange && !sender.IsModerator && !Config.OccupantsChangeSubject)
        {
            await ev.ReplyErrorAsync(StanzaError.Forbidden, "only moderators may change the subject of this room");
            return;
        }

        // A version 7 UUID: the archive finds a stanza-id by the time it carries (SqliteArchiveChunk).
        var stanzaId = RandomIds.Uuid7(DateTimeOffset.UtcNow);
        var content = Serialize(stanza, sender, stanzaId);
        var from = Jid.WithResource(sender.Nick).ToString();
        var id = stanza.Id();
        var archived = !isSubjectChange && Config.Archived && ArchiveModule.IsArchivable(stanza, groupchat: true)
            ? ArchiveAppend(stanzaId, from, ArchivedCopy(stanza, from, id, sender))
            : null;
        var weight = content.Utf8.Length + 128;
        foreach (var occupant in _occupants)
        {
            var message = new Element("message", Ns.Client) { SourceLength = weight };
            message.SetAttribute("from", from).SetAttribute("to", occupant.RealJidText).SetAttribute("type", "groupchat").SetAttribute("id", id);
            message.Add(content);
            Send(occupant, message);
        }
        if (isSubjectChange)
        {
            Subject = subject!.Text;
            SubjectNick = sender.Nick;
            if (Config.Persistent) await _service.SaveAsync(this);
        }
        else if (Config.HistoryLength > 0 && !Config.Archived)
        {
            History.Add(new HistoryEntry(DateTimeOffset.UtcNow, sender.Nick, sender.OccupantId, id, stanzaId, content), Config.HistoryLength);
        }
        // Backpressure as for account archives.
        if (archived is not null) await _service.ArchiveWriter.Throttle().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static bool Passed(Element child, string room) =>
        child.Namespace != OccupantIdNs && !child.Is("error", Ns.Client) && !(child.Is("stanza-id", StanzaIdNs) && child.GetAttribute("by") == room);

    /// <summary>
    /// The message's children as the room passes them on: any occupant-id the sender put in replaced by the room's
    /// (XEP-0421), any stanza-id claiming to be the room's by the room's own (XEP-0359 §5).
    /// </summary>
    private SerializedContent Serialize(Element stanza, Occupant sender, string stanzaId)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        var room = Jid.ToString();
        foreach (var child in stanza.Elements)
            if (Passed(child, room))
                ElementWriter.Write(child, buffer, Ns.Client);
        ElementWriter.Write(new Element("occupant-id", OccupantIdNs).SetAttribute("id", sender.OccupantId), buffer, Ns.Client);
        ElementWriter.Write(new Element("stanza-id", StanzaIdNs).SetAttribute("id", stanzaId).SetAttribute("by", room), buffer, Ns.Client);
        return new SerializedContent(buffer.WrittenSpan.ToArray());
    }

    /// <summary>A private message between occupants (XEP-0045 §7.5), marked with an empty muc#user element.</summary>
    public async ValueTask PrivateMessageAsync(StanzaEvent ev)
    {
        var sender = OccupantByJid(ev.From);
        if (ev.Type == "groupchat")
        {
            await ev.ReplyErrorAsync(StanzaError.BadRequest, "private messages are not of type groupchat");
            return;
        }
        if (sender is null)
        {
            await ev.ReplyErrorAsync(StanzaError.NotAcceptable, "only occupants may send private messages in the room");
            return;
        }
        if (!_byNick.TryGetValue(ev.To.Resource!, out var target))
        {
            await ev.ReplyErrorAsync(StanzaError.ItemNotFound, "nobody in the room has that nick");
            return;
        }
        var allowed = Config.AllowPm switch
        {
            "participants" => sender.Role >= Role.Participant,
            "moderators" => sender.IsModerator,
            "none" => false,
            _ => true,
        };
        if (!allowed)
        {
            await ev.ReplyErrorAsync(StanzaError.Forbidden, $"private messages in this room are for {Config.AllowPm}");
            return;
        }
        if (await RefusedByRoomRuleAsync(ev)) return;
        var message = ev.Stanza.Clone();
        message.SetAttribute("from", Jid.WithResource(sender.Nick).ToString());
        message.RemoveChildren(node => node is Element e && (e.Namespace == OccupantIdNs || e.Is("x", UserNs)));
        message.AddChild("x", UserNs);
        message.AddChild("occupant-id", OccupantIdNs).SetAttribute("id", sender.OccupantId);
        // Every session under the nick gets it (multi-session nicks).
        foreach (var session in _occupants)
            if (session.Nick == target.Nick) Send(session, message.Clone().SetAttribute("to", session.RealJidText));
    }

    /// <summary>The room's own word list (its configuration, public in its disco#info), told to the sender like the server's policy.</summary>
    private async ValueTask<bool> RefusedByRoomRuleAsync(StanzaEvent ev)
    {
        if (Modules.Policy.PolicyModule.IsEndToEndEncrypted(ev.Stanza) || Config.BlockedWordIn(ev.Stanza) is not { } word) return false;
        await ev.ReplyErrorAsync(StanzaError.PolicyViolation, $"Rejected by this room's rule: its word list (in the room's disco#info) contains '{word}'");
        return true;
    }

    /// <summary>The subject, sent last when entering (XEP-0045 §7.2.15): empty when none was set.</summary>
    private Element SubjectMessage(Occupant to)
    {
        var message = ToOccupant("message", to, SubjectNick is null ? Jid.ToString() : Jid.WithResource(SubjectNick).ToString())
            .SetAttribute("type", "groupchat").SetAttribute("id", "subject-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)));
        message.AddChild("subject").AddText(Subject);
        return message;
    }

    // ---- discovery ----

    /// <summary>disco#info of the room (XEP-0045 §6.4) with the muc#roominfo form (§15.5.4).</summary>
    public Element DiscoInfo()
    {
        var query = new Element("query", Ns.DiscoInfo);
        query.AddChild("identity").SetAttribute("category", "conference").SetAttribute("type", "text")
            .SetAttribute("name", Config.Name.Length > 0 ? Config.Name : Jid.Local);
        foreach (var feature in new[] { MucNs, Ns.DiscoInfo, Ns.DiscoItems, Ns.Register, OccupantIdNs, StanzaIdNs, ModerateNs, LegacyModerateNs, MucService.SelfPingNs, "jabber:x:conference", HatsNs, AdHocModule.Namespace }
                     .Concat(Config.Features()).Order(StringComparer.Ordinal))
            query.AddChild("feature").SetAttribute("var", feature);
        if (Config.Archived)
            foreach (var feature in new[] { ArchiveModule.Namespace, ArchiveModule.ExtendedFeature })
                query.AddChild("feature").SetAttribute("var", feature);
        var form = query.AddChild("x", Ns.DataForms).SetAttribute("type", "result");
        AddField(form, "FORM_TYPE", MucNs + "#roominfo", "hidden");
        AddField(form, "muc#roominfo_description", Config.Description);
        AddField(form, "muc#roomconfig_roomname", Config.Name);
        AddField(form, "muc#roominfo_occupants", _occupants.Length.ToString());
        AddField(form, "muc#roominfo_subject", Subject);
        AddField(form, "muc#roominfo_subjectmod", Config.OccupantsChangeSubject ? "1" : "0", "boolean");
        AddField(form, "muc#roomconfig_changesubject", Config.OccupantsChangeSubject ? "1" : "0", "boolean");
        AddField(form, "muc#maxhistoryfetch", Config.HistoryLength.ToString());
        var words = form.AddChild("field").SetAttribute("var", "candor#roominfo_blockedwords").SetAttribute("type", "text-multi");
        foreach (var word in Config.BlockedWords) words.AddChild("value").AddText(word);
        // Nobody's words are kept without them being told: whether, and how long, is public (XEP-0128).
        AddField(form, ArchivedField, Config.Archived ? "1" : "0", "boolean");
        AddField(form, ArchiveRetentionField, Config.Archived ? Server.Options.MucArchiveRetentionDays.ToString() : "0");
        return query;
    }

    private static void AddField(Element form, string var, string value, string? type = null) =>
        form.AddChild("field").SetAttribute("var", var).SetAttribute("type", type).AddChild("value").AddText(value);

    // ---- occupant ids ----

    /// <summary>XEP-0421: an HMAC of the bare JID under the room's secret, so the same person keeps an id that reveals nothing.</summary>
    private string OccupantIdOf(Jid realJid) =>
        Convert.ToBase64String(HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes(realJid.Bare.ToString())).AsSpan(0, 18));

    // ---- storage ----

    /// <summary>What a persistent room keeps across restarts: configuration, affiliations, registered nicks, subject.</summary>
    public Element ToStored()
    {
        var room = new Element("room", MucService.StoreNs).SetAttribute("secret", Convert.ToBase64String(_secret));
        var config = Config.Form();
        config.SetAttribute("type", "submit");
        room.Add(config);
        foreach (var (jid, affiliation) in _affiliations)
            room.AddChild("affiliation").SetAttribute("jid", jid.ToString()).SetAttribute("affiliation", Roles.Name(affiliation));
        foreach (var (jid, nick) in _registeredNicks)
            room.AddChild("nick").SetAttribute("jid", jid.ToString()).AddText(nick);
        foreach (var (jid, hats) in _hats)
            foreach (var hat in hats)
                room.AddChild("hat").SetAttribute("jid", jid.ToString()).SetAttribute("uri", hat.Uri).SetAttribute("title", hat.Title);
        room.AddChild("subject").SetAttribute("nick", SubjectNick).AddText(Subject);
        return room;
    }

    public static Room FromStored(MucService service, Jid jid, Element stored)
    {
        var room = new Room(service, jid, Convert.FromBase64String(stored.GetAttribute("secret") ?? ""));
        if (stored.GetChild("x", Ns.DataForms) is { } config) room.Config = room.Config.With(config, out _) ?? room.Config;
        foreach (var child in stored.Elements)
        {
            if (child.Name == "affiliation" && Jid.TryParse(child.GetAttribute("jid"), out var member)
                && Roles.TryParseAffiliation(child.GetAttribute("affiliation"), out var affiliation))
                room._affiliations[member] = affiliation;
            else if (child.Name == "nick" && Jid.TryParse(child.GetAttribute("jid"), out var owner))
                room._registeredNicks[owner] = child.Text;
            else if (child.Name == "hat" && Jid.TryParse(child.GetAttribute("jid"), out var wearer))
            {
                if (!room._hats.TryGetValue(wearer, out var hats)) room._hats[wearer] = hats = [];
                hats.Add(new Hat(child.GetAttribute("uri") ?? "", child.GetAttribute("title") ?? ""));
            }
            else if (child.Name == "subject")
                (room.Subject, room.SubjectNick) = (child.Text, child.GetAttribute("nick"));
        }
        return room;
    }
}
