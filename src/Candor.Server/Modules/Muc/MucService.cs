using System.Collections.Concurrent;
using Candor.Server.Core;
using Candor.Server.Modules.AdHoc;
using Candor.Server.Modules.Archive;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// The chat service at its own domain: finds or creates the room a stanza is for and hands it over under the
/// room's gate; answers for the service itself (disco) and keeps persistent rooms in a key-value store.
/// </summary>
public sealed partial class MucService
{
    public const string StoreNs = "urn:xmpp:candor:muc:0";
    public const string SelfPingNs = "http://jabber.org/protocol/muc#self-ping-optimization";

    private readonly ConcurrentDictionary<string, Room> _rooms = new(StringComparer.Ordinal);
    /// <summary>The rooms each real JID is in, so a session that ends leaves them without visiting every room.</summary>
    private readonly ConcurrentDictionary<Jid, ConcurrentDictionary<Room, byte>> _joined = new();
    private readonly IKeyValueStore _store;
    private readonly ILogger _logger;
    private readonly Lazy<Task> _loaded;

    public MucService(XmppServer server, Jid jid, IKeyValueStore store, IArchiveStore archive, ArchiveWriter archiveWriter)
    {
        Server = server;
        Jid = jid;
        _store = store;
        Archive = archive;
        ArchiveWriter = archiveWriter;
        _logger = server.LoggerFactory.CreateLogger("Candor.Muc");
        _loaded = new Lazy<Task>(LoadAsync);
    }

    public XmppServer Server { get; }
    public Jid Jid { get; }
    /// <summary>The rooms' archives, each under its room's JID.</summary>
    public IArchiveStore Archive { get; }
    public ArchiveWriter ArchiveWriter { get; }

    private async Task LoadAsync()
    {
        foreach (var key in await _store.ListUsersAsync())
        {
            if (!Jid.TryParse(key, out var roomJid) || roomJid.Domain != Jid.Domain || roomJid.Local is null) continue;
            var stored = await _store.GetAsync(key);
            if (stored is null) continue;
            _rooms[roomJid.Local] = Room.FromStored(this, roomJid, StoredStanza.Parse(stored));
        }
    }

    public async ValueTask HandleAsync(StanzaEvent ev)
    {
        await _loaded.Value;
        var to = ev.To;
        if (to.Local is null)
        {
            await ServiceAsync(ev);
            return;
        }
        if (ev.Stanza.IsMessage() && ev.Type != "error"
            && await Server.Policy.RefusingRuleAsync(ev.Stanza, static _ => ValueTask.FromResult(false), 0) is { } rule)
        {
            // The published policy holds in rooms as everywhere: the sender alone is told which rule refused it.
            Log.Refused(_logger, rule.Id, ev.From.Bare, to.Bare);
            await ev.ReplyErrorAsync(StanzaError.PolicyViolation, rule.RejectionText);
            return;
        }
        var joining = ev.Stanza.IsPresence() && ev.Type is null && !to.IsBare;
        // A room destroyed while this stanza waited at its gate: look again (a join then creates a new room).
        for (var attempt = 0; attempt < 3; attempt++)
        {
            Room? room;
            var created = false;
            if (joining)
            {
                var fresh = new Room(this, to.Bare);
                room = _rooms.GetOrAdd(to.Local, fresh);
                created = room == fresh;
                if (created && _rooms.Count > Server.Options.MucMaxRooms)
                {
                    _rooms.TryRemove(new KeyValuePair<string, Room>(to.Local, fresh));
                    await ev.ReplyErrorAsync(StanzaError.ResourceConstraint, "the chat service holds as many rooms as it may; try an existing one");
                    return;
                }
            }
            else room = _rooms.GetValueOrDefault(to.Local);
            if (room is null)
            {
                await NoSuchRoomAsync(ev);
                return;
            }
            Onward? onward = null;
            await room.Gate.WaitAsync();
            try
            {
                if (room.Destroyed) continue;
                if (created)
                {
                    // §10.1: the creator owns the room; a MUC client gets it locked until configured, others an instant room.
                    room.SetAffiliation(ev.From.Bare, Affiliation.Owner);
                    room.Locked = ev.Stanza.GetChild("x", Room.MucNs) is not null;
                    // A new room starts with no archive, even if a temporary one of that name was left with one by a stop.
                    await Archive.DeleteAsync(room.Jid.ToString());
                }
                if (ev.Stanza.IsIq() && !to.IsBare) onward = await room.OccupantIqAsync(ev);
                else await DispatchAsync(room, ev, created);
            }
            finally
            {
                room.Gate.Release();
            }
            // Outside the gate: the occupant's answer (a vCard from its account, at once) comes back through this room.
            if (onward is { } o) await Server.Router.DeliverAsync(o.Stanza, o.From, o.To);
            return;
        }
    }

    private static async ValueTask DispatchAsync(Room room, StanzaEvent ev, bool created)
    {
        switch (ev.Stanza.Name)
        {
            case "presence":
                if (!ev.To.IsBare) await room.PresenceAsync(ev, created);
                else if (ev.Type is null) await ev.ReplyErrorAsync(StanzaError.JidMalformed, "enter a room as room@service/nick");
                return;
            case "message":
                if (ev.Type == "error")
                {
                    await room.BouncedAsync(ev);
                    return;
                }
                if (!ev.To.IsBare) await room.PrivateMessageAsync(ev);
                else if (ev.Type == "groupchat") await room.GroupchatAsync(ev);
                else if (!await room.ServiceMessageAsync(ev))
                    await ev.ReplyErrorAsync(StanzaError.BadRequest, "a room takes groupchat messages, invitations and voice requests");
                return;
            default:
                await RoomIqAsync(room, ev);
                return;
        }
    }

    private static async ValueTask RoomIqAsync(Room room, StanzaEvent ev)
    {
        if (ev.Type is not ("get" or "set")) return;
        var payload = ev.Stanza.FirstElement;
        if (payload is null || ev.Stanza.Elements.Skip(1).Any())
        {
            await ev.ReplyErrorAsync(StanzaError.BadRequest, "An IQ get or set carries exactly one child element.");
            return;
        }
        var request = new IqRequest(ev, payload);
        var reply = (payload.Namespace, request.IsSet) switch
        {
            (Ns.DiscoInfo, false) when payload.GetAttribute("node") is null => request.Result(room.DiscoInfo()),
            (Ns.DiscoInfo, false) when payload.GetAttribute("node") == Room.ReservedNickNode => request.Result(room.ReservedNick(ev.From)),
            (Ns.DiscoItems, false) when payload.GetAttribute("node") is null => request.Result(new Element("query", Ns.DiscoItems)),
            (Ns.DiscoItems, false) when payload.GetAttribute("node") == AdHocModule.Namespace => request.Result(room.CommandItems(ev.From)),
            (Ns.DiscoInfo or Ns.DiscoItems, false) => request.Error(StanzaError.ItemNotFound, "no such node"),
            (Room.AdminNs, _) => await room.AdminAsync(request),
            (Room.OwnerNs, _) => await room.OwnerAsync(request),
            (Ns.Register, _) => await room.RegisterAsync(request),
            (AdHocModule.Namespace, true) => await room.HatCommandAsync(request),
            (Room.ModerateNs or Room.FastenNs, _) => await room.ModerateAsync(request),
            (ArchiveModule.Namespace, _) => await room.ArchiveRequestAsync(request),
            (Ns.Ping, false) => request.Result(),
            _ => request.Error(StanzaError.ServiceUnavailable),
        };
        await ev.Server.Router.DeliverAsync(reply, ev.To, ev.From);
    }

    private static async ValueTask NoSuchRoomAsync(StanzaEvent ev)
    {
        // Presence other than a join (leaving a room that is gone) needs no answer.
        if (ev.Stanza.IsPresence() || ev.Type is "error" or "result") return;
        await ev.ReplyErrorAsync(StanzaError.ItemNotFound, "no such room");
    }

    /// <summary>Stanzas to the service's own domain: disco (the public rooms) and ping.</summary>
    private async ValueTask ServiceAsync(StanzaEvent ev)
    {
        if (ev.Stanza.IsPresence() && ev.Type is null)
        {
            await ev.ReplyErrorAsync(StanzaError.JidMalformed, "enter a room as room@service/nick");
            return;
        }
        if (ev.Stanza.IsPresence() || ev.Type is "error" or "result") return;
        if (!ev.Stanza.IsIq())
        {
            await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable, "messages go to a room, not to the chat service");
            return;
        }
        var payload = ev.Stanza.FirstElement;
        var request = new IqRequest(ev, payload ?? new Element("none"));
        Element reply;
        if (payload is null || request.IsSet || payload.GetAttribute("node") is not null) reply = request.Error(StanzaError.ServiceUnavailable);
        else if (payload.Is("query", Ns.DiscoInfo))
        {
            var query = new Element("query", Ns.DiscoInfo);
            query.AddChild("identity").SetAttribute("category", "conference").SetAttribute("type", "text").SetAttribute("name", "Chat rooms");
            foreach (var feature in new[] { Ns.DiscoInfo, Ns.DiscoItems, Room.MucNs, Room.OccupantIdNs, SelfPingNs, Ns.Ping })
                query.AddChild("feature").SetAttribute("var", feature);
            reply = request.Result(query);
        }
        else if (payload.Is("query", Ns.DiscoItems))
        {
            var query = new Element("query", Ns.DiscoItems);
            foreach (var room in _rooms.Values.OrderBy(r => r.Jid.Local, StringComparer.Ordinal))
                if (room.Config.Public && !room.Locked && !room.Destroyed)
                    query.AddChild("item").SetAttribute("jid", room.Jid.ToString())
                        .SetAttribute("name", room.Config.Name.Length > 0 ? room.Config.Name : room.Jid.Local);
            reply = request.Result(query);
        }
        else if (payload.Is("ping", Ns.Ping)) reply = request.Result();
        else reply = request.Error(StanzaError.ServiceUnavailable);
        await Server.Router.DeliverAsync(reply, ev.To, ev.From);
    }

    // ---- what rooms tell the service ----

    public void Track(Jid realJid, Room room, bool joined)
    {
        if (joined) _joined.GetOrAdd(realJid, _ => new()).TryAdd(room, 0);
        else if (_joined.TryGetValue(realJid, out var rooms))
        {
            rooms.TryRemove(room, out _);
            if (rooms.IsEmpty) _joined.TryRemove(new KeyValuePair<Jid, ConcurrentDictionary<Room, byte>>(realJid, rooms));
        }
    }

    /// <summary>A session that ends leaves every room it was in, whether or not it sent presence.</summary>
    public async ValueTask<bool> SessionEndedAsync(Session session)
    {
        if (!_joined.TryGetValue(session.Jid, out var rooms)) return false;
        foreach (var room in rooms.Keys)
        {
            await room.Gate.WaitAsync();
            try
            {
                if (room.OccupantByJid(session.Jid) is { } occupant) await room.LeaveAsync(occupant);
            }
            finally
            {
                room.Gate.Release();
            }
        }
        return false;
    }

    /// <summary>
    /// Takes an empty temporary room, or a destroyed one, out of service with its archive: a room created later
    /// under the same name, perhaps by someone else, starts with none.
    /// </summary>
    public async ValueTask DisposeRoomAsync(Room room)
    {
        room.Destroyed = true;
        _rooms.TryRemove(new KeyValuePair<string, Room>(room.Jid.Local!, room));
        await ArchiveWriter.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await Archive.DeleteAsync(room.Jid.ToString());
    }

    public Task SaveAsync(Room room) => _store.SetAsync(room.Jid.ToString(), ElementWriter.ToXmlString(room.ToStored()));

    public Task ForgetAsync(Room room) => _store.SetAsync(room.Jid.ToString(), null);

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "Message from {From} to room {Room} refused by policy rule {Rule}")]
        public static partial void Refused(ILogger logger, string rule, Jid from, Jid room);
    }
}
