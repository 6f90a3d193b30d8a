using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Client.Omemo;

/// <summary>What became of an incoming OMEMO message. <see cref="Error"/> says why it could not be read;
/// <see cref="Empty"/> marks a message without payload (a key exchange or heartbeat: session upkeep, no text).</summary>
public sealed record OmemoDecrypted(string? Body, uint SenderDevice, Trust Trust, string? Error, bool Empty)
{
    public bool Failed => Error is not null;
    /// <summary>Whether it came in the legacy eu.siacs.conversations.axolotl namespace.</summary>
    public bool Legacy { get; init; }
}

/// <summary>
/// urn:xmpp:omemo:2 (XEP-0384 0.8, with XEP-0420 envelopes) and the legacy eu.siacs.conversations.axolotl (XEP-0384
/// 0.3) over an <see cref="XmppClient"/>: publishes this device in both (one device id and identity key, as
/// python-omemo does), encrypts a message for every trusted device of the recipients and the account's own other
/// devices (omemo:2 when every recipient publishes it, else legacy), decrypts incoming messages in either namespace.
/// Not thread-safe: call from one task at a time.
/// </summary>
public sealed class OmemoClient(XmppClient client, OmemoStateFile file)
{
    public const string Namespace = "urn:xmpp:omemo:2";
    public const string LegacyNamespace = Legacy.Namespace;
    public const string DevicesNode = "urn:xmpp:omemo:2:devices";
    public const string BundlesNode = "urn:xmpp:omemo:2:bundles";
    public const string FallbackBody = "[This message is OMEMO encrypted]";
    private const string Sce = "urn:xmpp:sce:1";
    private const string PubSub = "http://jabber.org/protocol/pubsub";
    private const string Hints = "urn:xmpp:hints";
    private static readonly TimeSpan SignedPreKeyLifetime = TimeSpan.FromDays(7);
    private static readonly XmlLimits EnvelopeLimits = XmlLimits.Default with { MaxStanzaBytes = 1024 * 1024 };

    private OmemoState? _state;
    /// <summary>Accounts already named as publishing no devices (in a group chat, warned once).</summary>
    private readonly HashSet<Jid> _warnedWithoutDevices = [];

    public OmemoState State => _state ?? throw new InvalidOperationException("StartAsync first");
    public uint DeviceId => State.Device.DeviceId;
    public string Fingerprint => OmemoState.Fingerprint(State.Device.IdentityPublic);
    private Jid Me => client.Options.Jid.Bare;

    /// <summary>Things to tell the user: a contact's new device, a device whose key changed, a rebuilt session.</summary>
    public event Action<string>? Notice;

    /// <summary>Loads (or creates) the state, rotates the signed pre-key after a week, tops up pre-keys, publishes
    /// the bundle and adds this device to the account's device list.</summary>
    public async Task StartAsync(CancellationToken cancellation = default)
    {
        _state = await file.LoadOrCreateAsync(cancellation);
        if (DateTimeOffset.UtcNow - State.Device.SignedPreKey.Created > SignedPreKeyLifetime) State.Device.RotateSignedPreKey();
        State.Device.Replenish();
        file.Save(State);
        await PublishBundleAsync(cancellation);
        foreach (var legacy in (bool[])[false, true])
        {
            var own = await DeviceListAsync(Me, legacy, cancellation);
            if (own.Contains(DeviceId)) continue;
            var item = legacy ? new Element("list", Legacy.Namespace) : new Element("devices", Namespace);
            foreach (var id in own.Append(DeviceId))
                item.AddChild("device").SetAttribute("id", id.ToString()).SetAttribute("label", !legacy && id == DeviceId ? "candor" : null);
            await PublishAsync(legacy ? Legacy.DevicesNode : DevicesNode, "current", item, null, cancellation);
        }
    }

    /// <summary>Publishes the bundle in both namespaces (the same keys; legacy wants them 0x05-prefixed and its own signature).</summary>
    private async Task PublishBundleAsync(CancellationToken cancellation)
    {
        var d = State.Device;
        var preKeys = d.PreKeys.Select(p => (Id: p.Key.ToString(), Public: Sodium.X25519Public(p.Value))).ToList();
        var bundle = new Element("bundle", Namespace);
        bundle.AddChild("spk").SetAttribute("id", d.SignedPreKey.Id.ToString()).AddText(Convert.ToBase64String(d.SignedPreKey.Public));
        bundle.AddChild("spks").AddText(Convert.ToBase64String(d.SignedPreKey.Signature));
        bundle.AddChild("ik").AddText(Convert.ToBase64String(d.IdentityPublic));
        var prekeys = bundle.AddChild("prekeys");
        foreach (var (id, pub) in preKeys) prekeys.AddChild("pk").SetAttribute("id", id).AddText(Convert.ToBase64String(pub));
        await PublishAsync(BundlesNode, DeviceId.ToString(), bundle, "max", cancellation);

        var old = new Element("bundle", Legacy.Namespace);
        old.AddChild("signedPreKeyPublic").SetAttribute("signedPreKeyId", d.SignedPreKey.Id.ToString())
            .AddText(Convert.ToBase64String(Legacy.Serialize(d.SignedPreKey.Public)));
        old.AddChild("signedPreKeySignature").AddText(Convert.ToBase64String(Legacy.Sign(d.IdentitySeed, d.IdentityPublic, d.SignedPreKey.Public)));
        old.AddChild("identityKey").AddText(Convert.ToBase64String(Legacy.SerializeIdentity(d.IdentityPublic)));
        var oldPrekeys = old.AddChild("prekeys");
        foreach (var (id, pub) in preKeys) oldPrekeys.AddChild("preKeyPublic").SetAttribute("preKeyId", id).AddText(Convert.ToBase64String(Legacy.Serialize(pub)));
        await PublishAsync(Legacy.BundleNode(DeviceId), "current", old, null, cancellation);
    }

    private async Task PublishAsync(string node, string itemId, Element payload, string? maxItems, CancellationToken cancellation)
    {
        var iq = Stanza.CreateIq("set", null, null, null);
        var pubsub = iq.AddChild("pubsub", PubSub);
        pubsub.AddChild("publish").SetAttribute("node", node).AddChild("item").SetAttribute("id", itemId).Add(payload);
        var form = pubsub.AddChild("publish-options").AddChild("x", Ns.DataForms).SetAttribute("type", "submit");
        Field(form, "FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options").SetAttribute("type", "hidden");
        Field(form, "pubsub#access_model", "open");
        if (maxItems is not null) Field(form, "pubsub#max_items", maxItems);
        await client.IqAsync(iq, cancellation: cancellation);
    }

    private static Element Field(Element form, string var, string value)
    {
        var field = form.AddChild("field").SetAttribute("var", var);
        field.AddChild("value").AddText(value);
        return field;
    }

    private async Task<Element?> ItemAsync(Jid owner, string node, string? itemId, CancellationToken cancellation)
    {
        var iq = Stanza.CreateIq("get", null, null, owner);
        var items = iq.AddChild("pubsub", PubSub).AddChild("items").SetAttribute("node", node);
        if (itemId is null) items.SetAttribute("max_items", "1");
        else items.AddChild("item").SetAttribute("id", itemId);
        try
        {
            var result = await client.IqAsync(iq, cancellation: cancellation);
            return result.GetChild("pubsub", PubSub)?.GetChild("items", PubSub)?.GetChild("item", PubSub)?.FirstElement;
        }
        // Prosody answers forbidden for a node that does not exist, so as not to tell strangers which nodes do; a node
        // this account may not read (not-authorized: presence subscription required) is as good as none to encrypt to.
        catch (XmppStanzaException e) when (e.Error.Condition is "item-not-found" or "service-unavailable" or "feature-not-implemented"
                                            or "forbidden" or "not-authorized")
        {
            return null;
        }
    }

    /// <summary>The device ids an account publishes (empty when it publishes none: it does not use omemo:2).</summary>
    public Task<IReadOnlyList<uint>> DeviceListAsync(Jid account, CancellationToken cancellation = default) =>
        DeviceListAsync(account, false, cancellation);

    /// <summary>The device ids an account publishes in omemo:2 or, <paramref name="legacy"/>, in eu.siacs.conversations.axolotl.</summary>
    public async Task<IReadOnlyList<uint>> DeviceListAsync(Jid account, bool legacy, CancellationToken cancellation = default) =>
        ParseDeviceList(await ItemAsync(account.Bare, legacy ? Legacy.DevicesNode : DevicesNode, null, cancellation), legacy);

    private static List<uint> ParseDeviceList(Element? devices, bool legacy)
    {
        var ids = new List<uint>();
        if (devices is null || !(legacy ? devices.Is("list", Legacy.Namespace) : devices.Is("devices", Namespace))) return ids;
        foreach (var device in devices.Elements)
            if (device.Name == "device" && uint.TryParse(device.GetAttribute("id"), out var id) && id > 0 && !ids.Contains(id)) ids.Add(id);
        return ids;
    }

    public async Task<OmemoBundle> BundleAsync(Jid account, uint device, bool legacy = false, CancellationToken cancellation = default)
    {
        var b = await (legacy ? ItemAsync(account.Bare, Legacy.BundleNode(device), null, cancellation)
                : ItemAsync(account.Bare, BundlesNode, device.ToString(), cancellation))
            ?? throw new OmemoException($"{account.Bare} device {device} publishes no {(legacy ? "legacy " : "")}bundle");
        try
        {
            if (legacy) return ParseLegacyBundle(b, device);
            var spk = b.GetChild("spk", Namespace) ?? throw new FormatException("no spk");
            var prekeys = new Dictionary<uint, byte[]>();
            foreach (var pk in b.GetChild("prekeys", Namespace)?.Elements ?? [])
                if (uint.TryParse(pk.GetAttribute("id"), out var id)) prekeys[id] = Convert.FromBase64String(pk.Text);
            return new OmemoBundle(device, Convert.FromBase64String(b.GetChildText("ik", Namespace) ?? ""),
                uint.Parse(spk.GetAttribute("id") ?? ""), Convert.FromBase64String(spk.Text),
                Convert.FromBase64String(b.GetChildText("spks", Namespace) ?? ""), prekeys);
        }
        catch (FormatException)
        {
            throw new OmemoException($"{account.Bare} device {device}'s bundle is malformed");
        }
    }

    private static OmemoBundle ParseLegacyBundle(Element b, uint device)
    {
        const string ns = Legacy.Namespace;
        var spk = b.GetChild("signedPreKeyPublic", ns) ?? throw new FormatException("no signedPreKeyPublic");
        var (signBit, signature) = Legacy.SplitSignature(Convert.FromBase64String(b.GetChildText("signedPreKeySignature", ns) ?? ""));
        var prekeys = new Dictionary<uint, byte[]>();
        foreach (var pk in b.GetChild("prekeys", ns)?.Elements ?? [])
            if (uint.TryParse(pk.GetAttribute("preKeyId"), out var id)) prekeys[id] = Legacy.Deserialize(Convert.FromBase64String(pk.Text));
        var identity = Legacy.Deserialize(Convert.FromBase64String(b.GetChildText("identityKey", ns) ?? ""));
        return new OmemoBundle(device, Legacy.CurveToEdPublic(identity, signBit), uint.Parse(spk.GetAttribute("signedPreKeyId") ?? ""),
            Legacy.Deserialize(Convert.FromBase64String(spk.Text)), signature, prekeys, Legacy: true);
    }

    /// <summary>Whether the account publishes an OMEMO device list in either namespace (so messages to it are
    /// encrypted by default).</summary>
    public async Task<bool> SupportsAsync(Jid account, CancellationToken cancellation = default) =>
        (await DeviceListAsync(account, false, cancellation)).Count > 0 || (await DeviceListAsync(account, true, cancellation)).Count > 0;

    /// <summary>
    /// A chat message to <paramref name="to"/> whose body is encrypted for every trusted (blind or verified) device of
    /// the recipient and every other device of this account, building sessions from bundles as needed. Throws
    /// <see cref="OmemoException"/> when no device of the recipient can be encrypted to.
    /// </summary>
    public Task<Element> EncryptAsync(Jid to, string? body, string type = "chat", CancellationToken cancellation = default) =>
        EncryptAsync(to, [to.Bare], body, type, cancellation);

    /// <summary>
    /// A message to <paramref name="to"/> encrypted for the devices of <paramref name="accounts"/> (in a group chat the
    /// room's members by their real JIDs, XEP-0384 §6.1) and this account's other devices: omemo:2 unless one of them
    /// publishes only a legacy device list. An account that publishes no list in that namespace cannot read the
    /// message: it is left out, with a <see cref="Notice"/> (once per account); when that leaves nobody, or when an
    /// account left has no trusted device, <see cref="OmemoException"/> names them.
    /// </summary>
    public async Task<Element> EncryptAsync(Jid to, IReadOnlyCollection<Jid> accounts, string? body, string type, CancellationToken cancellation = default)
    {
        var others = accounts.Select(a => a.Bare).Where(a => a != Me).Distinct().ToList();
        var lists = new Dictionary<Jid, IReadOnlyList<uint>>();
        foreach (var account in others) lists[account] = await DeviceListAsync(account, false, cancellation);
        var legacy = false;
        if (lists.Where(l => l.Value.Count == 0).Select(l => l.Key).ToList() is [_, ..] withoutTwo)
        {
            var legacyLists = new Dictionary<Jid, IReadOnlyList<uint>>();
            foreach (var account in others) legacyLists[account] = await DeviceListAsync(account, true, cancellation);
            legacy = withoutTwo.Any(a => legacyLists[a].Count > 0);
            if (legacy) lists = legacyLists;
        }
        if (lists.Where(l => l.Value.Count == 0).Select(l => l.Key).ToList() is [_, ..] without)
        {
            if (without.Count == others.Count)
                throw new OmemoException($"{string.Join(", ", without)} publish{(without.Count == 1 ? "es" : "")} no OMEMO devices");
            foreach (var account in without)
            {
                lists.Remove(account);
                others.Remove(account);
                if (_warnedWithoutDevices.Add(account))
                    Notice?.Invoke($"{account} publishes no {(legacy ? "legacy " : "")}OMEMO devices and cannot read your encrypted messages to {to.Bare}");
            }
        }
        lists[Me] = (await DeviceListAsync(Me, legacy, cancellation)).Where(d => d != DeviceId).ToList();

        byte[]? payload = null;
        byte[] iv = [];
        byte[] keyMaterial;
        if (legacy)
        {
            // A key exchange without text still carries an IV and key material (python-omemo's schema requires the IV).
            byte[] ciphertext;
            (ciphertext, iv, keyMaterial) = Legacy.SealPayload(Encoding.UTF8.GetBytes(body ?? ""));
            if (body is not null) payload = ciphertext;
        }
        else if (body is not null)
        {
            var envelope = new Element("envelope", Sce);
            envelope.AddChild("content").AddChild("body", Ns.Client).AddText(body);
            envelope.AddChild("rpad").AddText(Convert.ToBase64String(RandomNumberGenerator.GetBytes(RandomNumberGenerator.GetInt32(1, 33))));
            envelope.AddChild("time").SetAttribute("stamp", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"));
            envelope.AddChild("to").SetAttribute("jid", to.Bare.ToString());
            envelope.AddChild("from").SetAttribute("jid", Me.ToString());
            (payload, keyMaterial) = OmemoCrypto.SealPayload(Encoding.UTF8.GetBytes(envelope.ToString()));
        }
        else keyMaterial = new byte[32 + OmemoCrypto.TagLength];

        var keys = new List<(Jid Account, uint Device, byte[] Data, bool Kex)>();
        var problems = new List<string>();
        foreach (var (account, devices) in lists)
        {
            foreach (var device in devices)
            {
                try
                {
                    var session = await SessionForAsync(account, device, legacy, cancellation);
                    if (session is null) continue;
                    var (data, kex) = session.Encrypt(keyMaterial);
                    keys.Add((account, device, data, kex));
                }
                catch (OmemoException e)
                {
                    problems.Add($"{account} device {device}: {e.Message}");
                }
            }
        }
        file.Save(State);
        foreach (var problem in problems) Notice?.Invoke($"not encrypted for {problem}");
        if (others.Where(a => keys.All(k => k.Account != a)).Select(a => a.ToString()).ToList() is [_, ..] unreachable)
            throw new OmemoException($"no trusted OMEMO device of {string.Join(", ", unreachable)} to encrypt for" +
                (problems.Count > 0 ? $" ({string.Join("; ", problems)})" : ""));
        return Compose(to, type, legacy, keys, payload, iv);
    }

    /// <summary>The &lt;message/&gt; with its &lt;encrypted/&gt; element in either namespace's layout.</summary>
    private Element Compose(Jid to, string type, bool legacy, List<(Jid Account, uint Device, byte[] Data, bool Kex)> keys, byte[]? payload, byte[] iv)
    {
        var message = new Element("message", Ns.Client).SetAttribute("to", to.ToString()).SetAttribute("type", type)
            .SetAttribute("id", XmppClient.NewId());
        var ns = legacy ? Legacy.Namespace : Namespace;
        var encrypted = message.AddChild("encrypted", ns);
        var header = encrypted.AddChild("header").SetAttribute("sid", DeviceId.ToString());
        if (legacy)
        {
            foreach (var k in keys)
                header.AddChild("key").SetAttribute("rid", k.Device.ToString()).SetAttribute("prekey", k.Kex ? "true" : null)
                    .AddText(Convert.ToBase64String(k.Data));
            header.AddChild("iv").AddText(Convert.ToBase64String(iv));
        }
        else
        {
            foreach (var account in keys.GroupBy(k => k.Account))
            {
                var element = header.AddChild("keys").SetAttribute("jid", account.Key.ToString());
                foreach (var k in account)
                    element.AddChild("key").SetAttribute("rid", k.Device.ToString()).SetAttribute("kex", k.Kex ? "true" : null)
                        .AddText(Convert.ToBase64String(k.Data));
            }
        }
        if (payload is not null)
        {
            encrypted.AddChild("payload").AddText(Convert.ToBase64String(payload));
            message.AddChild("body").AddText(FallbackBody);
            message.AddChild("encryption", "urn:xmpp:eme:0").SetAttribute("namespace", ns).SetAttribute("name", "OMEMO");
        }
        message.AddChild("store", Hints);
        return message;
    }

    /// <summary>The session to encrypt to a device with, built from its bundle if there is none; null for a
    /// device not trusted (distrusted, or undecided after a verification: BTBV).</summary>
    private async Task<RatchetSession?> SessionForAsync(Jid account, uint device, bool legacy, CancellationToken cancellation)
    {
        var bare = account.ToString();
        var sessions = State.SessionsOf(legacy);
        if (sessions.TryGetValue(OmemoState.SessionKey(bare, device), out var session))
            return State.TrustOf(bare, device) is Trust.Blind or Trust.Verified ? session : null;
        var bundle = await BundleAsync(account, device, legacy, cancellation);
        if (State.Learn(bare, device, bundle.IdentityKey)) AnnounceNew(bare, device, bundle.IdentityKey);
        if (State.TrustOf(bare, device) is not (Trust.Blind or Trust.Verified)) return null;
        session = RatchetSession.Initiate(State.Device, bundle);
        sessions[OmemoState.SessionKey(bare, device)] = session;
        return session;
    }

    private void AnnounceNew(string bare, uint device, byte[] identity) =>
        Notice?.Invoke($"new OMEMO device of {bare}: {device}, fingerprint {OmemoState.Fingerprint(identity)} " +
            $"({State.TrustOf(bare, device).ToString().ToLowerInvariant()})");

    /// <summary>
    /// Decrypts an incoming message carrying an &lt;encrypted/&gt; element of either namespace; null when it has none.
    /// Never throws for a bad message: the reason is in <see cref="OmemoDecrypted.Error"/>. A key exchange builds a
    /// session (its pre-key is then replaced and the bundle republished) and is answered with an empty message.
    /// <paramref name="sender"/> is the sender's real JID when the 'from' is not (a group chat occupant, XEP-0384 §6.1).
    /// </summary>
    public async Task<OmemoDecrypted?> DecryptAsync(Element stanza, CancellationToken cancellation = default) =>
        await DecryptAsync(stanza, null, cancellation);

    public async Task<OmemoDecrypted?> DecryptAsync(Element stanza, Jid? sender, CancellationToken cancellation = default)
    {
        var legacy = stanza.GetChild("encrypted", Namespace) is null;
        var ns = legacy ? Legacy.Namespace : Namespace;
        var encrypted = stanza.GetChild("encrypted", ns);
        if (encrypted is null) return null;
        var from = sender?.Bare ?? ChatMessage.ParseJid(stanza.GetAttribute("from"))?.Bare ?? Me;
        var header = encrypted.GetChild("header", ns);
        uint sid = 0;
        var trust = Trust.Undecided;
        OmemoDecrypted Result(string? body, string? error, bool empty = false) => new(body, sid, trust, error, empty) { Legacy = legacy };
        if (header is null || !uint.TryParse(header.GetAttribute("sid"), out sid))
            return Result(null, "the OMEMO header is missing or has no sender device");
        var key = legacy
            ? header.Elements.FirstOrDefault(k => k.Name == "key" && k.GetAttribute("rid") == DeviceId.ToString())
            : header.Elements.FirstOrDefault(k => k.Name == "keys" && k.GetAttribute("jid") == Me.ToString())?.Elements
                .FirstOrDefault(k => k.Name == "key" && k.GetAttribute("rid") == DeviceId.ToString());
        trust = State.TrustOf(from.ToString(), sid);
        if (key is null) return Result(null, $"not encrypted for this device ({DeviceId})");
        var sessions = State.SessionsOf(legacy);
        var sessionKey = OmemoState.SessionKey(from.ToString(), sid);
        var kex = key.GetAttribute(legacy ? "prekey" : "kex") is "true" or "1";
        // A payload that fails after its key decrypted must not cost the session that key: the sender's next
        // message would otherwise look like a replay. (A session a key exchange just built stays: it is the sender's.)
        var existing = sessions.GetValueOrDefault(sessionKey);
        var before = existing?.Clone();
        byte[] keyMaterial;
        try
        {
            keyMaterial = await DecryptKeyAsync(from, sid, Convert.FromBase64String(key.Text), kex, legacy, cancellation);
        }
        catch (Exception e) when (e is OmemoException or FormatException)
        {
            return Result(null, e.Message);
        }
        trust = State.TrustOf(from.ToString(), sid);
        var payload = encrypted.GetChildText("payload", ns);
        if (payload is null) return Result(null, null, empty: true);
        try
        {
            var body = legacy
                ? Encoding.UTF8.GetString(Legacy.OpenPayload(keyMaterial, Convert.FromBase64String(header.GetChildText("iv", ns) ?? ""),
                    Convert.FromBase64String(payload)))
                : OpenEnvelope(OmemoCrypto.OpenPayload(keyMaterial, Convert.FromBase64String(payload)), from);
            return Result(body, null);
        }
        catch (Exception e) when (e is OmemoException or FormatException)
        {
            if (before is not null && sessions.GetValueOrDefault(sessionKey) == existing)
            {
                sessions[sessionKey] = before;
                file.Save(State);
            }
            return Result(null, e.Message);
        }
    }

    private async Task<byte[]> DecryptKeyAsync(Jid from, uint sid, byte[] data, bool kex, bool legacy, CancellationToken cancellation)
    {
        var bare = from.ToString();
        var sessions = State.SessionsOf(legacy);
        var sessionKey = OmemoState.SessionKey(bare, sid);
        sessions.TryGetValue(sessionKey, out var session);
        byte[] keyMaterial;
        if (kex)
        {
            var (exchange, message) = KeyExchange.Unwrap(data, legacy);
            if (session?.AcceptedEphemeral is { } seen && seen.AsSpan().SequenceEqual(exchange.EphemeralKey))
            {
                // The same key exchange again (the peer has not heard from us yet): the existing session reads it.
                keyMaterial = session.Decrypt(message);
            }
            else
            {
                var built = RatchetSession.Accept(State.Device, exchange, RatchetSession.RatchetPublicOf(message, legacy), legacy);
                keyMaterial = built.Decrypt(message);
                var isNew = State.Learn(bare, sid, exchange.IdentityKey);
                if (isNew) AnnounceNew(bare, sid, exchange.IdentityKey);
                if (session is not null) Notice?.Invoke($"{bare} device {sid} started a new OMEMO session");
                sessions[sessionKey] = built;
                State.Device.PreKeys.Remove(exchange.PreKeyId);
                State.Device.Replenish();
                file.Save(State);
                await PublishBundleAsync(cancellation);
                await HeartbeatAsync(from, built, sid, cancellation);
                return keyMaterial;
            }
        }
        else
        {
            if (session is null) throw new OmemoException($"no session with {bare} device {sid} (its key exchange was never received)");
            keyMaterial = session.Decrypt(data);
        }
        if (session.ReceivedSinceSent >= 53) await HeartbeatAsync(from, session, sid, cancellation);
        file.Save(State);
        return keyMaterial;
    }

    /// <summary>An empty OMEMO message to one device, so that it learns the session is confirmed or moves its ratchet
    /// forward (XEP-0384 §4.6, §7.3).</summary>
    private async Task HeartbeatAsync(Jid to, RatchetSession session, uint device, CancellationToken cancellation)
    {
        var (_, iv, keyMaterial) = session.Legacy ? Legacy.SealPayload([]) : ([], [], new byte[32 + OmemoCrypto.TagLength]);
        var (data, kex) = session.Encrypt(keyMaterial);
        file.Save(State);
        await client.SendAsync(Compose(to, "chat", session.Legacy, [(to.Bare, device, data, kex)], null, iv), cancellation);
    }

    /// <summary>The body of an XEP-0420 envelope, after checking it claims the real sender (§5: the affix 'from').</summary>
    private static string OpenEnvelope(byte[] plaintext, Jid from)
    {
        Element envelope;
        try
        {
            var parser = new XmppStreamParser(EnvelopeLimits, fragmentMode: true);
            if (parser.Read(new ReadOnlySequence<byte>(plaintext), out _, out var element) != XmlEvent.Element || element is null)
                throw new OmemoException("the decrypted envelope is not one XML element");
            envelope = element;
        }
        catch (XmlStreamException e)
        {
            throw new OmemoException($"the decrypted envelope is not XML: {e.Message}");
        }
        if (!envelope.Is("envelope", Sce)) throw new OmemoException("the decrypted payload is not an SCE envelope");
        if (envelope.GetChild("from", Sce)?.GetAttribute("jid") is { } claimed && (!Jid.TryParse(claimed, out var c) || c.Bare != from))
            throw new OmemoException($"the envelope claims to be from {claimed}, but came from {from}");
        return envelope.GetChild("content", Sce)?.GetChildText("body", Ns.Client)
            ?? throw new OmemoException("the envelope has no body");
    }

    /// <summary>Sets the trust of a device (by fingerprint check done by the caller); saves.</summary>
    public void SetTrust(string bare, uint device, Trust trust)
    {
        if (!State.Devices.TryGetValue(bare, out var devices) || !devices.TryGetValue(device, out var known))
            throw new OmemoException($"no known device {device} of {bare}");
        known.Trust = trust;
        file.Save(State);
    }
}
