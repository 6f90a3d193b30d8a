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
}

/// <summary>
/// urn:xmpp:omemo:2 (XEP-0384 0.8, with XEP-0420 envelopes) over an <see cref="XmppClient"/>: publishes this device
/// (device list and bundle on PEP), encrypts a message for every trusted device of the recipient and the account's
/// own other devices, decrypts incoming messages. Not thread-safe: call from one task at a time.
/// </summary>
public sealed class OmemoClient(XmppClient client, OmemoStateFile file)
{
    public const string Namespace = "urn:xmpp:omemo:2";
    public const string DevicesNode = "urn:xmpp:omemo:2:devices";
    public const string BundlesNode = "urn:xmpp:omemo:2:bundles";
    public const string FallbackBody = "[This message is OMEMO encrypted]";
    private const string Sce = "urn:xmpp:sce:1";
    private const string PubSub = "http://jabber.org/protocol/pubsub";
    private const string Hints = "urn:xmpp:hints";
    private static readonly TimeSpan SignedPreKeyLifetime = TimeSpan.FromDays(7);
    private static readonly XmlLimits EnvelopeLimits = XmlLimits.Default with { MaxStanzaBytes = 1024 * 1024 };

    private OmemoState? _state;

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
        _state = file.LoadOrCreate();
        if (DateTimeOffset.UtcNow - State.Device.SignedPreKey.Created > SignedPreKeyLifetime) State.Device.RotateSignedPreKey();
        State.Device.Replenish();
        file.Save(State);
        await PublishBundleAsync(cancellation);
        var own = await DeviceListAsync(Me, cancellation);
        if (!own.Contains(DeviceId))
        {
            var item = new Element("devices", Namespace);
            foreach (var id in own.Append(DeviceId))
                item.AddChild("device").SetAttribute("id", id.ToString()).SetAttribute("label", id == DeviceId ? "candor" : null);
            await PublishAsync(DevicesNode, "current", item, null, cancellation);
        }
    }

    private Task PublishBundleAsync(CancellationToken cancellation)
    {
        var d = State.Device;
        var bundle = new Element("bundle", Namespace);
        bundle.AddChild("spk").SetAttribute("id", d.SignedPreKey.Id.ToString()).AddText(Convert.ToBase64String(d.SignedPreKey.Public));
        bundle.AddChild("spks").AddText(Convert.ToBase64String(d.SignedPreKey.Signature));
        bundle.AddChild("ik").AddText(Convert.ToBase64String(d.IdentityPublic));
        var prekeys = bundle.AddChild("prekeys");
        foreach (var (id, priv) in d.PreKeys)
            prekeys.AddChild("pk").SetAttribute("id", id.ToString()).AddText(Convert.ToBase64String(Sodium.X25519Public(priv)));
        return PublishAsync(BundlesNode, DeviceId.ToString(), bundle, "max", cancellation);
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
        catch (XmppStanzaException e) when (e.Error.Condition is "item-not-found" or "service-unavailable" or "feature-not-implemented")
        {
            return null;
        }
    }

    /// <summary>The device ids an account publishes (empty when it publishes none: it does not use omemo:2).</summary>
    public async Task<IReadOnlyList<uint>> DeviceListAsync(Jid account, CancellationToken cancellation = default) =>
        ParseDeviceList(await ItemAsync(account.Bare, DevicesNode, null, cancellation));

    private static List<uint> ParseDeviceList(Element? devices)
    {
        var ids = new List<uint>();
        if (devices is null || !devices.Is("devices", Namespace)) return ids;
        foreach (var device in devices.Elements)
            if (device.Name == "device" && uint.TryParse(device.GetAttribute("id"), out var id) && id > 0 && !ids.Contains(id)) ids.Add(id);
        return ids;
    }

    public async Task<OmemoBundle> BundleAsync(Jid account, uint device, CancellationToken cancellation = default)
    {
        var b = await ItemAsync(account.Bare, BundlesNode, device.ToString(), cancellation)
            ?? throw new OmemoException($"{account.Bare} device {device} publishes no bundle");
        try
        {
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

    /// <summary>Whether the account publishes an omemo:2 device list (so messages to it are encrypted by default).</summary>
    public async Task<bool> SupportsAsync(Jid account, CancellationToken cancellation = default) =>
        (await DeviceListAsync(account, cancellation)).Count > 0;

    /// <summary>
    /// A chat message to <paramref name="to"/> whose body is encrypted for every device of the recipient and every
    /// other device of this account that is trusted (blind or verified), building sessions from bundles as needed.
    /// Throws <see cref="OmemoException"/> when no device of the recipient can be encrypted to.
    /// </summary>
    public async Task<Element> EncryptAsync(Jid to, string? body, string type = "chat", CancellationToken cancellation = default)
    {
        var recipients = new List<(Jid Account, IReadOnlyList<uint> Devices)>
        {
            (to.Bare, await DeviceListAsync(to, cancellation)),
            (Me, (await DeviceListAsync(Me, cancellation)).Where(d => d != DeviceId).ToList()),
        };
        if (recipients[0].Devices.Count == 0) throw new OmemoException($"{to.Bare} publishes no OMEMO devices");

        byte[]? payload = null;
        var keyMaterial = new byte[32 + OmemoCrypto.TagLength];
        if (body is not null)
        {
            var envelope = new Element("envelope", Sce);
            envelope.AddChild("content").AddChild("body", Ns.Client).AddText(body);
            envelope.AddChild("rpad").AddText(Convert.ToBase64String(RandomNumberGenerator.GetBytes(RandomNumberGenerator.GetInt32(1, 33))));
            envelope.AddChild("time").SetAttribute("stamp", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"));
            envelope.AddChild("to").SetAttribute("jid", to.Bare.ToString());
            envelope.AddChild("from").SetAttribute("jid", Me.ToString());
            (payload, keyMaterial) = OmemoCrypto.SealPayload(Encoding.UTF8.GetBytes(envelope.ToString()));
        }

        var header = new Element("header", Namespace).SetAttribute("sid", DeviceId.ToString());
        var encryptedFor = 0;
        var problems = new List<string>();
        foreach (var (account, devices) in recipients)
        {
            Element? keys = null;
            foreach (var device in devices)
            {
                try
                {
                    var session = await SessionForAsync(account, device, cancellation);
                    if (session is null) continue;
                    var (data, kex) = session.Encrypt(keyMaterial);
                    keys ??= header.AddChild("keys").SetAttribute("jid", account.ToString());
                    keys.AddChild("key").SetAttribute("rid", device.ToString()).SetAttribute("kex", kex ? "true" : null)
                        .AddText(Convert.ToBase64String(data));
                    if (account == to.Bare) encryptedFor++;
                }
                catch (OmemoException e)
                {
                    problems.Add($"{account} device {device}: {e.Message}");
                }
            }
        }
        file.Save(State);
        foreach (var problem in problems) Notice?.Invoke($"not encrypted for {problem}");
        if (encryptedFor == 0 && to.Bare != Me)
            throw new OmemoException($"no trusted OMEMO device of {to.Bare} to encrypt for" + (problems.Count > 0 ? $" ({string.Join("; ", problems)})" : ""));

        var message = new Element("message", Ns.Client).SetAttribute("to", to.ToString()).SetAttribute("type", type)
            .SetAttribute("id", XmppClient.NewId());
        var encrypted = message.AddChild("encrypted", Namespace);
        encrypted.Add(header);
        if (payload is not null)
        {
            encrypted.AddChild("payload").AddText(Convert.ToBase64String(payload));
            message.AddChild("body").AddText(FallbackBody);
            message.AddChild("encryption", "urn:xmpp:eme:0").SetAttribute("namespace", Namespace).SetAttribute("name", "OMEMO");
        }
        message.AddChild("store", Hints);
        return message;
    }

    /// <summary>The session to encrypt to a device with, built from its bundle if there is none; null for a
    /// device not trusted (distrusted, or undecided after a verification: BTBV).</summary>
    private async Task<RatchetSession?> SessionForAsync(Jid account, uint device, CancellationToken cancellation)
    {
        var bare = account.ToString();
        if (State.Sessions.TryGetValue(OmemoState.SessionKey(bare, device), out var session))
            return State.TrustOf(bare, device) is Trust.Blind or Trust.Verified ? session : null;
        var bundle = await BundleAsync(account, device, cancellation);
        if (State.Learn(bare, device, bundle.IdentityKey)) AnnounceNew(bare, device, bundle.IdentityKey);
        if (State.TrustOf(bare, device) is not (Trust.Blind or Trust.Verified)) return null;
        session = RatchetSession.Initiate(State.Device, bundle);
        State.Sessions[OmemoState.SessionKey(bare, device)] = session;
        return session;
    }

    private void AnnounceNew(string bare, uint device, byte[] identity) =>
        Notice?.Invoke($"new OMEMO device of {bare}: {device}, fingerprint {OmemoState.Fingerprint(identity)} " +
            $"({State.TrustOf(bare, device).ToString().ToLowerInvariant()})");

    /// <summary>
    /// Decrypts an incoming message carrying an omemo:2 &lt;encrypted/&gt; element; null when it has none. Never
    /// throws for a bad message: the reason is in <see cref="OmemoDecrypted.Error"/>. A key exchange builds a
    /// session (its pre-key is then replaced and the bundle republished) and is answered with an empty message.
    /// </summary>
    public async Task<OmemoDecrypted?> DecryptAsync(Element stanza, CancellationToken cancellation = default)
    {
        var encrypted = stanza.GetChild("encrypted", Namespace);
        if (encrypted is null) return null;
        var from = ChatMessage.ParseJid(stanza.GetAttribute("from"))?.Bare ?? Me;
        var header = encrypted.GetChild("header", Namespace);
        if (header is null || !uint.TryParse(header.GetAttribute("sid"), out var sid))
            return new OmemoDecrypted(null, 0, Trust.Undecided, "the OMEMO header is missing or has no sender device", false);
        var key = header.Elements.FirstOrDefault(k => k.Name == "keys" && k.GetAttribute("jid") == Me.ToString())?.Elements
            .FirstOrDefault(k => k.Name == "key" && k.GetAttribute("rid") == DeviceId.ToString());
        var trust = State.TrustOf(from.ToString(), sid);
        if (key is null)
            return new OmemoDecrypted(null, sid, trust, $"not encrypted for this device ({DeviceId})", false);
        var sessionKey = OmemoState.SessionKey(from.ToString(), sid);
        var kex = key.GetAttribute("kex") is "true" or "1";
        // A payload that fails after its key decrypted must not cost the session that key: the sender's next
        // message would otherwise look like a replay. (A session a key exchange just built stays: it is the sender's.)
        var existing = State.Sessions.GetValueOrDefault(sessionKey);
        var before = existing?.Clone();
        byte[] keyMaterial;
        try
        {
            keyMaterial = await DecryptKeyAsync(from, sid, Convert.FromBase64String(key.Text), kex, cancellation);
        }
        catch (Exception e) when (e is OmemoException or FormatException)
        {
            return new OmemoDecrypted(null, sid, trust, e.Message, false);
        }
        trust = State.TrustOf(from.ToString(), sid);
        var payload = encrypted.GetChildText("payload", Namespace);
        if (payload is null) return new OmemoDecrypted(null, sid, trust, null, true);
        try
        {
            var plaintext = OmemoCrypto.OpenPayload(keyMaterial, Convert.FromBase64String(payload));
            return new OmemoDecrypted(OpenEnvelope(plaintext, from), sid, trust, null, false);
        }
        catch (Exception e) when (e is OmemoException or FormatException)
        {
            if (before is not null && State.Sessions.GetValueOrDefault(sessionKey) == existing)
            {
                State.Sessions[sessionKey] = before;
                file.Save(State);
            }
            return new OmemoDecrypted(null, sid, trust, e.Message, false);
        }
    }

    private async Task<byte[]> DecryptKeyAsync(Jid from, uint sid, byte[] data, bool kex, CancellationToken cancellation)
    {
        var bare = from.ToString();
        var sessionKey = OmemoState.SessionKey(bare, sid);
        State.Sessions.TryGetValue(sessionKey, out var session);
        byte[] keyMaterial;
        if (kex)
        {
            var (exchange, message) = KeyExchange.Unwrap(data);
            if (session?.AcceptedEphemeral is { } seen && seen.AsSpan().SequenceEqual(exchange.EphemeralKey))
            {
                // The same key exchange again (the peer has not heard from us yet): the existing session reads it.
                keyMaterial = session.Decrypt(message);
            }
            else
            {
                var built = RatchetSession.Accept(State.Device, exchange, RatchetSession.RatchetPublicOf(message));
                keyMaterial = built.Decrypt(message);
                var isNew = State.Learn(bare, sid, exchange.IdentityKey);
                if (isNew) AnnounceNew(bare, sid, exchange.IdentityKey);
                if (session is not null) Notice?.Invoke($"{bare} device {sid} started a new OMEMO session");
                State.Sessions[sessionKey] = built;
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
        var (data, kex) = session.Encrypt(new byte[32 + OmemoCrypto.TagLength]);
        file.Save(State);
        var message = new Element("message", Ns.Client).SetAttribute("to", to.ToString()).SetAttribute("type", "chat")
            .SetAttribute("id", XmppClient.NewId());
        var header = message.AddChild("encrypted", Namespace).AddChild("header").SetAttribute("sid", DeviceId.ToString());
        header.AddChild("keys").SetAttribute("jid", to.Bare.ToString()).AddChild("key").SetAttribute("rid", device.ToString())
            .SetAttribute("kex", kex ? "true" : null).AddText(Convert.ToBase64String(data));
        message.AddChild("store", Hints);
        await client.SendAsync(message, cancellation);
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
