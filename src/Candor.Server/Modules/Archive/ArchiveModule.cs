using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Archive;

/// <summary>
/// The message archive (XEP-0313) that clients sync history from. Every one-to-one chat or normal message with
/// content is archived for its local sender and its local recipient, each copy under a stanza-id (XEP-0359) that the
/// delivered message carries; the account's preferences (XEP-0441) and the server's default decide which
/// correspondents are archived. Writes are batched off the routing path (<see cref="ArchiveWriter"/>), old entries
/// are swept after the published retention, and an account can delete its whole archive.
/// </summary>
public sealed partial class ArchiveModule : IModule
{
    public const string Namespace = "urn:xmpp:mam:2";
    public const string ExtendedFeature = "urn:xmpp:mam:2#extended";
    public const string StanzaIdNamespace = "urn:xmpp:sid:0";
    public const string StoreName = "archive";
    public const string PurgeCommand = "delete-archive";
    public static readonly TimeSpan SweepInterval = TimeSpan.FromHours(1);

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0313", "0.8.0", "urn:xmpp:mam:2 and #extended: user archives, queries by with (bare or full JID)/start/end/ids/before-id/after-id, flip-page, metadata"),
        new("XEP-0059", "1.0", "RSM paging of archive queries, both directions, with count and first index"),
        new("XEP-0359", "0.7.0", "stanza-id on archived messages; client-supplied ones claiming this server are removed"),
        new("XEP-0441", "0.2.0", "archiving preferences per account: default always/roster/never, always and never lists"),
        new("XEP-0334", "0.3.0", "no-store, no-permanent-store and store hints respected by the archive"),
    ];

    private const string PrefsCache = "archive-prefs";
    private readonly ConcurrentDictionary<string, ArchivePrefs> _prefs = new(StringComparer.Ordinal);
    private readonly ulong _bodyKeyPrefix = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
    private long _bodyKeys;
    // Until an account stores preferences (here, or on another node: it drops this node's copy), every account has the
    // server's default, so with ArchiveDefault=never a message needs no look-up at all.
    private volatile bool _anyStored;

    public void Register(XmppServer server)
    {
        var prefsStore = server.Storage.OpenKeyValue("archive-prefs");
        _anyStored = prefsStore.ListUsersAsync().GetAwaiter().GetResult().Count > 0;
        server.Caches.Register(PrefsCache, user =>
        {
            _anyStored = true;
            _prefs.TryRemove(user, out _);
        });
        var (store, writer) = Open(server, StoreName, server.Options.ArchiveRetentionDays);
        server.Archive = writer;

        // Priority.Observe: after the policy filter (a refused message is archived nowhere), before delivery and
        // offline storage, so that the delivered and the offline copy carry the recipient's stanza-id.
        server.Hooks.MessageToBare.Add(ev => ArchiveAsync(server, writer, prefsStore, ev), Priority.Observe);
        server.Hooks.MessageToFull.Add(ev => ArchiveAsync(server, writer, prefsStore, ev), Priority.Observe);
        server.Disco.AccountFeatures.Add(Namespace);
        server.Disco.AccountFeatures.Add(ExtendedFeature);
        server.Disco.AccountFeatures.Add(StanzaIdNamespace);
        server.Iq.Register(IqScope.Account, "get", "query", Namespace, request => ValueTask.FromResult<Element?>(Refuse(request) ?? request.Result(MamQuery.Form())));
        server.Iq.Register(IqScope.Account, "set", "query", Namespace, request => QueryAsync(writer, store, request));
        server.Iq.Register(IqScope.Account, "get", "metadata", Namespace, request => MetadataAsync(writer, store, request));
        server.Iq.Register(IqScope.Account, "get", "prefs", Namespace, request => GetPrefsAsync(server, prefsStore, request));
        server.Iq.Register(IqScope.Account, "set", "prefs", Namespace, request => SetPrefsAsync(server, prefsStore, request));
        server.Disco.Commands[PurgeCommand] = new(PurgeCommand, "Delete my message history", requester => PurgeCommandAsync(writer, store, requester),
            Confirmation: "Delete every message archived for your account on this server? This cannot be undone.");
    }

    /// <summary>
    /// An archive store with its batching writer and retention sweep (now, then hourly), both stopped with the
    /// server: the account archive here, the rooms' archive in the MUC module.
    /// </summary>
    public static (IArchiveStore Store, ArchiveWriter Writer) Open(XmppServer server, string storeName, int retentionDays)
    {
        var store = server.Storage.OpenArchive(storeName);
        var logger = server.LoggerFactory.CreateLogger("Candor.Archive");
        var writer = new ArchiveWriter(store, logger);
        var retention = TimeSpan.FromDays(retentionDays);
        SweepAsync(store, retention, logger).GetAwaiter().GetResult();
        var stopping = new CancellationTokenSource();
        var sweeping = SweepPeriodicallyAsync(store, retention, logger, stopping.Token);
        server.Hooks.Stopping.Add(async _ =>
        {
            await stopping.CancelAsync();
            await sweeping;
            await writer.StopAsync();
            return false;
        });
        return (store, writer);
    }

    private ValueTask<bool> ArchiveAsync(XmppServer server, ArchiveWriter writer, IKeyValueStore prefsStore, StanzaEvent ev)
    {
        var stanza = ev.Stanza;
        RemoveClaimedStanzaIds(stanza, server.Domain.Domain);
        var from = ev.From;
        // The server's own notices are not conversation; other domains do not reach local accounts yet.
        if (from.Local is null || from.Domain != server.Domain.Domain || !IsArchivable(stanza)
            || (!_anyStored && server.Options.ArchiveDefault == "never"))
            return ValueTask.FromResult(false);
        // Every message passes here: when both ends' preferences are in memory and archive nothing (ArchiveDefault=never),
        // that is decided without a state machine.
        var recipient = ev.To.Local!;
        if ((from.Local == recipient || CachedDecision(from.Local, ev.To.Bare) == false) && CachedDecision(recipient, from.Bare) == false)
            return ValueTask.FromResult(false);
        return ArchiveEligibleAsync(server, writer, prefsStore, ev);
    }

    /// <summary>Whether <paramref name="owner"/> archives messages with <paramref name="with"/>, if that is known without storage.</summary>
    private bool? CachedDecision(string owner, Jid with) => _prefs.TryGetValue(owner, out var prefs) ? Decision(prefs, with) : null;

    /// <summary>The preferences' answer; null when it depends on the roster.</summary>
    private static bool? Decision(ArchivePrefs prefs, Jid with) => prefs.Listed(with.ToString()) ?? prefs.Default switch
    {
        "always" => true,
        "roster" => null,
        _ => false,
    };

    private async ValueTask<bool> ArchiveEligibleAsync(XmppServer server, ArchiveWriter writer, IKeyValueStore prefsStore, StanzaEvent ev)
    {
        var stanza = ev.Stanza;
        var from = ev.From;
        var recipient = ev.To.Local!;
        if (server.Sessions.Get(recipient).Count == 0 && !await server.Accounts.ExistsAsync(recipient)) return false;

        var now = DateTimeOffset.UtcNow;
        var sender = from.Local!;
        var senderBare = from.Bare;
        var recipientBare = ev.To.Bare;
        var forSender = sender != recipient && await ShouldArchiveAsync(server, prefsStore, sender, recipientBare);
        var forRecipient = await ShouldArchiveAsync(server, prefsStore, recipient, senderBare);
        if (!forSender && !forRecipient) return false;
        // Archived for both ends, the message is stored once and each archive refers to it under its own stanza-id
        // (the entries' own values are then what the sealing layer binds them with, not the stanza).
        var body = forSender && forRecipient ? new ArchiveBody(NewBodyKey(), ElementWriter.ToUtf8(stanza), refs: 2) : null;
        var xml = body is null ? ElementWriter.ToXmlString(stanza) : "";
        ArchiveEntry? senderEntry = null, recipientEntry = null;
        if (forSender)
        {
            var id = RandomIds.Uuid7(now);
            senderEntry = new ArchiveEntry(sender, id, now, recipientBare.ToString(), xml) { WithFull = FullOrNull(ev.To), Body = body };
            ev.SenderArchiveId = id;
        }
        if (forRecipient)
        {
            var recipientId = RandomIds.Uuid7(now);
            recipientEntry = new ArchiveEntry(recipient, recipientId, now, senderBare.ToString(), xml) { WithFull = FullOrNull(from), Body = body };
            if (sender == recipient) ev.SenderArchiveId = recipientId;
            stanza.Add(MamQuery.StanzaId(recipientId, recipientBare));
        }
        _ = senderEntry is null ? writer.Append(recipientEntry!) : writer.Append(senderEntry, recipientEntry);
        await writer.Throttle().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return false;
    }

    /// <summary>
    /// A body's key needs to be unique, not unpredictable: 64 random bits per server instance (cluster nodes and
    /// restarts differ) and a 64-bit counter, which saves a call to the random generator per message, in the text
    /// form of a UUID (which SQLite's packed rows keep as its 16 bytes). Not a stanza-id of either end, which would
    /// show whose item is the sender's.
    /// </summary>
    private string NewBodyKey()
    {
        Span<byte> key = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(key, _bodyKeyPrefix);
        BinaryPrimitives.WriteInt64BigEndian(key[8..], Interlocked.Increment(ref _bodyKeys));
        return new Guid(key, bigEndian: true).ToString();
    }

    private static string? FullOrNull(Jid jid) => jid.IsBare ? null : jid.ToString();

    /// <summary>
    /// XEP-0359 §5: a stanza-id claiming to be assigned by this server or one of its accounts did not come from
    /// here and must not be trusted by the recipient, so it is removed whatever is archived.
    /// </summary>
    private static void RemoveClaimedStanzaIds(Element stanza, string domain)
    {
        var claimed = false;
        foreach (var child in stanza.Elements)
            if (child.Is("stanza-id", StanzaIdNamespace) && ClaimsDomain(child.GetAttribute("by"), domain)) claimed = true;
        if (claimed) RemoveStanzaIds(stanza, domain);
    }

    // Apart from the check above, so that the closure is allocated only when a claimed id is there.
    private static void RemoveStanzaIds(Element stanza, string domain) =>
        stanza.RemoveChildren(n => n is Element e && e.Is("stanza-id", StanzaIdNamespace) && ClaimsDomain(e.GetAttribute("by"), domain));

    private static bool ClaimsDomain(string? by, string domain) =>
        Jid.TryParse(by, out var jid) && jid.Domain == domain;

    /// <summary>
    /// XEP-0313 §5.1.1: chat and normal messages with a body (in a room's archive: groupchat ones); here also those
    /// whose content is end-to-end encrypted and chat markers, retractions and corrections, which refer to such a
    /// message. XEP-0334 hints win.
    /// </summary>
    public static bool IsArchivable(Element stanza, bool groupchat = false)
    {
        if (groupchat ? stanza.Type() != "groupchat" : stanza.Type() is not (null or "chat" or "normal")) return false;
        var content = false;
        foreach (var child in stanza.Elements)
        {
            switch (child.Namespace)
            {
                case Ns.Client when child.Name == "body":
                case "eu.siacs.conversations.axolotl" or "urn:xmpp:omemo:2" when child.Name == "encrypted":
                case "urn:xmpp:openpgp:0" when child.Name == "openpgp":
                case "urn:xmpp:chat-markers:0" when child.Name is "received" or "displayed" or "acknowledged":
                case "urn:xmpp:message-retract:1" when child.Name == "retract":
                case "urn:xmpp:message-correct:0" when child.Name == "replace":
                    content = true;
                    break;
                case "urn:xmpp:hints":
                    if (child.Name is "no-store" or "no-permanent-store") return false;
                    if (child.Name == "store") content = true;
                    break;
            }
        }
        return content;
    }

    private async ValueTask<bool> ShouldArchiveAsync(XmppServer server, IKeyValueStore prefsStore, string owner, Jid with)
    {
        var prefs = await PrefsAsync(server, prefsStore, owner);
        return Decision(prefs, with) ?? (await server.Rosters.GetAsync(owner, with) is { Hidden: false });
    }

    /// <summary>The account's preferences, read once and then kept: every archived message needs them.</summary>
    private async ValueTask<ArchivePrefs> PrefsAsync(XmppServer server, IKeyValueStore prefsStore, string user)
    {
        if (_prefs.TryGetValue(user, out var prefs)) return prefs;
        var stored = await prefsStore.GetAsync(user);
        prefs = stored is null ? ArchivePrefs.Of(server.Options.ArchiveDefault) : ArchivePrefs.Parse(StoredStanza.Parse(stored), out _) ?? ArchivePrefs.Of(server.Options.ArchiveDefault);
        return _prefs.GetOrAdd(user, prefs);
    }

    private static Element? Refuse(IqRequest request) =>
        request.IsSelf ? null : request.Error(StanzaError.Forbidden, "an archive is readable by its account alone");

    private static async ValueTask<Element?> QueryAsync(ArchiveWriter writer, IArchiveStore store, IqRequest request)
    {
        if (Refuse(request) is { } refused) return refused;
        if (request.Origin is not { } origin) return request.Error(StanzaError.Forbidden, "queries come from a session of the account");
        // A query sees every message routed before it, including those still queued for writing.
        await writer.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return await MamQuery.RunAsync(request, store, request.From.Local!, request.From.Bare, origin);
    }

    private static async ValueTask<Element?> MetadataAsync(ArchiveWriter writer, IArchiveStore store, IqRequest request)
    {
        if (Refuse(request) is { } refused) return refused;
        await writer.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return await MamQuery.MetadataAsync(request, store, request.From.Local!);
    }

    private async ValueTask<Element?> GetPrefsAsync(XmppServer server, IKeyValueStore prefsStore, IqRequest request)
    {
        if (Refuse(request) is { } refused) return refused;
        return request.Result((await PrefsAsync(server, prefsStore, request.From.Local!)).ToElement());
    }

    private async ValueTask<Element?> SetPrefsAsync(XmppServer server, IKeyValueStore prefsStore, IqRequest request)
    {
        if (Refuse(request) is { } refused) return refused;
        if (ArchivePrefs.Parse(request.Payload, out var error) is not { } prefs) return request.Error(StanzaError.BadRequest, error);
        var user = request.From.Local!;
        var element = prefs.ToElement();
        _anyStored = true;
        await prefsStore.SetAsync(user, ElementWriter.ToXmlString(element));
        _prefs[user] = prefs;
        server.Caches.Wrote(PrefsCache, user);
        return request.Result(element);
    }

    private static async ValueTask<AdHocResult> PurgeCommandAsync(ArchiveWriter writer, IArchiveStore store, Jid requester)
    {
        await writer.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var deleted = await store.DeleteAsync(requester.Local!);
        return new AdHocResult($"Deleted your message history on this server: {deleted} archived messages. Copies your clients keep are not affected.");
    }

    private static async Task SweepAsync(IArchiveStore store, TimeSpan retention, ILogger logger)
    {
        var deleted = await store.DeleteOlderThanAsync(DateTimeOffset.UtcNow - retention);
        if (deleted > 0) Log.Swept(logger, deleted, retention.TotalDays);
    }

    private static async Task SweepPeriodicallyAsync(IArchiveStore store, TimeSpan retention, ILogger logger, CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(SweepInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    await SweepAsync(store, retention, logger);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Log.SweepFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "Archive retention: deleted {Count} messages older than {Days} days")]
        public static partial void Swept(ILogger logger, int count, double days);

        [LoggerMessage(Level = LogLevel.Error, Message = "Archive retention sweep failed; it is tried again in an hour")]
        public static partial void SweepFailed(ILogger logger, Exception exception);
    }
}
