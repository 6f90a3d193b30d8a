using System.Security.Cryptography;
using NSec.Cryptography;

namespace Candor.Client.Omemo;

/// <summary>A device's public bundle (XEP-0384 §5.3.2): Ed25519 identity, signed X25519 pre-key, one-time pre-keys.
/// A <paramref name="Legacy"/> bundle's identity is converted to Ed25519 form and its signature covers 0x05 ‖ pre-key.</summary>
public sealed record OmemoBundle(uint DeviceId, byte[] IdentityKey, uint SignedPreKeyId, byte[] SignedPreKey,
    byte[] SignedPreKeySignature, IReadOnlyDictionary<uint, byte[]> PreKeys, bool Legacy = false);

/// <summary>The X3DH header an initiating device sends until the session is confirmed (OMEMOKeyExchange).</summary>
public sealed record KeyExchange(uint PreKeyId, uint SignedPreKeyId, byte[] IdentityKey, byte[] EphemeralKey)
{
    public byte[] Wrap(byte[] authenticatedMessage, bool legacy) => legacy ? Omemo.Legacy.WrapKeyExchange(this, authenticatedMessage)
        : new Protobuf.Writer().UInt(1, PreKeyId).UInt(2, SignedPreKeyId)
            .Bytes(3, IdentityKey).Bytes(4, EphemeralKey).Bytes(5, authenticatedMessage).ToArray();

    public static (KeyExchange Header, byte[] Message) Unwrap(byte[] data, bool legacy)
    {
        if (legacy) return Omemo.Legacy.UnwrapKeyExchange(data);
        var f = Protobuf.Read(data);
        return (new KeyExchange(Protobuf.RequiredUInt(f, 1), Protobuf.RequiredUInt(f, 2), Protobuf.RequiredBytes(f, 3),
            Protobuf.RequiredBytes(f, 4)), Protobuf.RequiredBytes(f, 5));
    }
}

/// <summary>A signed pre-key: X25519 pair with the identity key's Ed25519 signature over the public half.</summary>
public sealed class SignedPreKey
{
    public uint Id { get; set; }
    public byte[] Private { get; set; } = [];
    public byte[] Public { get; set; } = [];
    public byte[] Signature { get; set; } = [];
    public DateTimeOffset Created { get; set; }
}

/// <summary>This device's long-term keys: identity (an Ed25519 seed), signed pre-keys, one-time pre-keys.</summary>
public sealed class OwnDevice
{
    public uint DeviceId { get; set; }
    public byte[] IdentitySeed { get; set; } = [];
    public SignedPreKey SignedPreKey { get; set; } = new();
    /// <summary>The previous signed pre-key, kept for key exchanges built from an older bundle.</summary>
    public SignedPreKey? OldSignedPreKey { get; set; }
    public Dictionary<uint, byte[]> PreKeys { get; set; } = [];
    public uint NextPreKeyId { get; set; } = 1;

    public const int PreKeyCount = 100;

    public static OwnDevice Create()
    {
        var device = new OwnDevice
        {
            // 1 .. 2^31-1 (XEP-0384 §5.3.1).
            DeviceId = (uint)RandomNumberGenerator.GetInt32(1, int.MaxValue),
            IdentitySeed = NewIdentitySeed(),
        };
        device.RotateSignedPreKey();
        device.Replenish();
        return device;
    }

    /// <summary>
    /// A seed whose Ed25519 public key has sign bit 0. Legacy OMEMO publishes only the key's Curve25519 form: XEdDSA's
    /// verifier (as specified) maps it back with sign bit 0, while libsignal's curve25519_verify (Converse's libomemo,
    /// python-oldmemo) takes the bit from the signature's top bit. With bit 0 the plain Ed25519 signature
    /// <see cref="Legacy.Sign"/> makes verifies under both; half of all seeds qualify.
    /// </summary>
    private static byte[] NewIdentitySeed()
    {
        while (true)
        {
            var seed = RandomNumberGenerator.GetBytes(32);
            using var key = Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey);
            if ((key.PublicKey.Export(KeyBlobFormat.RawPublicKey)[31] & 0x80) == 0) return seed;
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    public byte[] IdentityPublic => IdentityKey().PublicKey.Export(KeyBlobFormat.RawPublicKey);
    internal byte[] IdentityCurvePrivate => Sodium.EdSeedToCurvePrivate(IdentitySeed);

    private Key IdentityKey() => Key.Import(SignatureAlgorithm.Ed25519, IdentitySeed, KeyBlobFormat.RawPrivateKey);

    public void RotateSignedPreKey()
    {
        var priv = RandomNumberGenerator.GetBytes(32);
        var pub = Sodium.X25519Public(priv);
        using var identity = IdentityKey();
        if (SignedPreKey.Public.Length > 0) OldSignedPreKey = SignedPreKey;
        SignedPreKey = new SignedPreKey
        {
            Id = SignedPreKey.Id + 1, Private = priv, Public = pub,
            Signature = SignatureAlgorithm.Ed25519.Sign(identity, pub), Created = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>Tops the one-time pre-keys up to <see cref="PreKeyCount"/>; true when any were added.</summary>
    public bool Replenish()
    {
        var added = false;
        while (PreKeys.Count < PreKeyCount)
        {
            PreKeys[NextPreKeyId++] = RandomNumberGenerator.GetBytes(32);
            added = true;
        }
        return added;
    }

    public OmemoBundle Bundle() => new(DeviceId, IdentityPublic, SignedPreKey.Id, SignedPreKey.Public, SignedPreKey.Signature,
        PreKeys.ToDictionary(p => p.Key, p => Sodium.X25519Public(p.Value)));
}

/// <summary>
/// One Double Ratchet session with one remote device (XEP-0384 §4, the Signal Double Ratchet with OMEMO's KDFs and
/// AEAD), started by X3DH. Mutable state: decryption works on a copy and commits only when the message authenticated,
/// so a tampered or replayed message leaves the session as it was.
/// </summary>
public sealed class RatchetSession
{
    public const int MaxSkip = 1000;

    public byte[] RootKey { get; set; } = [];
    public byte[] OwnRatchetPrivate { get; set; } = [];
    public byte[] TheirRatchetPublic { get; set; } = [];
    public byte[]? SendChain { get; set; }
    public byte[]? ReceiveChain { get; set; }
    public uint SendCount { get; set; }
    public uint ReceiveCount { get; set; }
    public uint PreviousSendCount { get; set; }
    /// <summary>Message keys of skipped messages, "hex(ratchet key):n" → key, oldest first.</summary>
    public List<KeyValuePair<string, byte[]>> Skipped { get; set; } = [];
    /// <summary>IK(initiator) ‖ IK(responder), Ed25519 encodings; legacy: IK(this device) ‖ IK(the peer), 0x05-prefixed
    /// Curve25519 encodings (libsignal's MAC covers sender ‖ recipient).</summary>
    public byte[] AssociatedData { get; set; } = [];
    /// <summary>eu.siacs.conversations.axolotl rather than urn:xmpp:omemo:2.</summary>
    public bool Legacy { get; set; }
    public byte[] TheirIdentity { get; set; } = [];
    /// <summary>Sent with every message until the peer answers (the session is then confirmed).</summary>
    public KeyExchange? PendingKeyExchange { get; set; }
    /// <summary>The key exchange this session was accepted from, to recognise its repetitions.</summary>
    public byte[]? AcceptedEphemeral { get; set; }
    /// <summary>Messages received since this device last sent one (a heartbeat is due after 53, XEP-0384 §4.6).</summary>
    public int ReceivedSinceSent { get; set; }

    /// <summary>X3DH as the initiator (XEP-0384 §4.3): verifies the signed pre-key, picks a one-time pre-key.</summary>
    public static RatchetSession Initiate(OwnDevice own, OmemoBundle bundle)
    {
        var legacy = bundle.Legacy;
        PublicKey identity;
        try
        {
            identity = PublicKey.Import(SignatureAlgorithm.Ed25519, bundle.IdentityKey, KeyBlobFormat.RawPublicKey);
        }
        catch (FormatException)
        {
            throw new OmemoException($"device {bundle.DeviceId}'s identity key is not a valid public key");
        }
        var signed = legacy ? Omemo.Legacy.Serialize(bundle.SignedPreKey) : bundle.SignedPreKey;
        if (!SignatureAlgorithm.Ed25519.Verify(identity, signed, bundle.SignedPreKeySignature))
            throw new OmemoException($"device {bundle.DeviceId}'s signed pre-key signature does not verify");
        if (bundle.PreKeys.Count == 0) throw new OmemoException($"device {bundle.DeviceId}'s bundle has no pre-keys");
        var (preKeyId, preKey) = PickPreKey(bundle.PreKeys);
        var ephemeral = RandomNumberGenerator.GetBytes(32);
        var theirIdentity = Sodium.EdToCurvePublic(bundle.IdentityKey);
        var secret = OmemoCrypto.X3dhSecret(legacy,
            Sodium.X25519(own.IdentityCurvePrivate, bundle.SignedPreKey),
            Sodium.X25519(ephemeral, theirIdentity),
            Sodium.X25519(ephemeral, bundle.SignedPreKey),
            Sodium.X25519(ephemeral, preKey));
        var session = new RatchetSession
        {
            RootKey = secret, OwnRatchetPrivate = RandomNumberGenerator.GetBytes(32), TheirRatchetPublic = bundle.SignedPreKey,
            AssociatedData = legacy ? [.. Omemo.Legacy.SerializeIdentity(own.IdentityPublic), .. Omemo.Legacy.SerializeIdentity(bundle.IdentityKey)]
                : [.. own.IdentityPublic, .. bundle.IdentityKey],
            TheirIdentity = bundle.IdentityKey, Legacy = legacy,
            PendingKeyExchange = new KeyExchange(preKeyId, bundle.SignedPreKeyId, own.IdentityPublic, Sodium.X25519Public(ephemeral)),
        };
        (session.RootKey, session.SendChain) = OmemoCrypto.RootStep(session.RootKey, Sodium.X25519(session.OwnRatchetPrivate, session.TheirRatchetPublic), legacy);
        return session;
    }

    /// <summary>
    /// A one-time pre-key at random, not the one numbered 0 while there are others: libsignal's JavaScript descendants
    /// (Converse's libomemo) publish a pre-key 0 but, accepting a key exchange, read pre-key id 0 as "no pre-key" and
    /// fail its MAC check, so a first message built on it would never be read there.
    /// </summary>
    internal static KeyValuePair<uint, byte[]> PickPreKey(IReadOnlyDictionary<uint, byte[]> preKeys)
    {
        var usable = preKeys.Count > 1 ? preKeys.Where(p => p.Key != 0).ToArray() : [.. preKeys];
        return usable[RandomNumberGenerator.GetInt32(usable.Length)];
    }

    /// <summary>X3DH as the responder: the session a key exchange builds (the pre-key it used is for the caller to remove).</summary>
    public static RatchetSession Accept(OwnDevice own, KeyExchange kex, byte[] firstRatchetPublic, bool legacy)
    {
        var spk = own.SignedPreKey.Id == kex.SignedPreKeyId ? own.SignedPreKey
            : own.OldSignedPreKey?.Id == kex.SignedPreKeyId ? own.OldSignedPreKey
            : throw new OmemoException($"the key exchange uses signed pre-key {kex.SignedPreKeyId}, which this device no longer has");
        if (!own.PreKeys.TryGetValue(kex.PreKeyId, out var preKey))
            throw new OmemoException($"the key exchange uses pre-key {kex.PreKeyId}, which this device does not have (unknown or already used)");
        var theirIdentity = Sodium.EdToCurvePublic(kex.IdentityKey);
        var secret = OmemoCrypto.X3dhSecret(legacy,
            Sodium.X25519(spk.Private, theirIdentity),
            Sodium.X25519(own.IdentityCurvePrivate, kex.EphemeralKey),
            Sodium.X25519(spk.Private, kex.EphemeralKey),
            Sodium.X25519(preKey, kex.EphemeralKey));
        var session = new RatchetSession
        {
            RootKey = secret, OwnRatchetPrivate = spk.Private, TheirRatchetPublic = firstRatchetPublic,
            AssociatedData = legacy ? [.. Omemo.Legacy.SerializeIdentity(own.IdentityPublic), .. Omemo.Legacy.Serialize(theirIdentity)]
                : [.. kex.IdentityKey, .. own.IdentityPublic],
            TheirIdentity = kex.IdentityKey, AcceptedEphemeral = kex.EphemeralKey, Legacy = legacy,
        };
        (session.RootKey, session.ReceiveChain) = OmemoCrypto.RootStep(session.RootKey, Sodium.X25519(session.OwnRatchetPrivate, session.TheirRatchetPublic), legacy);
        session.OwnRatchetPrivate = RandomNumberGenerator.GetBytes(32);
        (session.RootKey, session.SendChain) = OmemoCrypto.RootStep(session.RootKey, Sodium.X25519(session.OwnRatchetPrivate, session.TheirRatchetPublic), legacy);
        return session;
    }

    /// <summary>Encrypts (the key material of) one message: an OMEMOAuthenticatedMessage, wrapped in the key exchange
    /// while the session is unconfirmed. Returns whether it is a key exchange (kex='true').</summary>
    public (byte[] Data, bool KeyExchange) Encrypt(byte[] plaintext)
    {
        var (chain, key) = OmemoCrypto.ChainStep(SendChain!);
        var data = Legacy ? Omemo.Legacy.SealMessage(key, AssociatedData, SendCount, PreviousSendCount, Sodium.X25519Public(OwnRatchetPrivate), plaintext)
            : OmemoCrypto.SealMessage(key, AssociatedData, SendCount, PreviousSendCount, Sodium.X25519Public(OwnRatchetPrivate), plaintext);
        SendChain = chain;
        SendCount++;
        ReceivedSinceSent = 0;
        return PendingKeyExchange is { } kex ? (kex.Wrap(data, Legacy), true) : (data, false);
    }

    /// <summary>The ratchet public key of an OMEMOAuthenticatedMessage (or SignalMessage), for <see cref="Accept"/>.</summary>
    public static byte[] RatchetPublicOf(byte[] authenticated, bool legacy) => Parse(authenticated, legacy).Dh;

    private static (byte[] Mac, byte[] Message, uint N, uint Pn, byte[] Dh) Parse(byte[] authenticated, bool legacy)
    {
        if (legacy) return Omemo.Legacy.ParseMessage(authenticated);
        var outer = Protobuf.Read(authenticated);
        var message = Protobuf.RequiredBytes(outer, 2);
        var header = Protobuf.Read(message);
        var dh = Protobuf.RequiredBytes(header, 3);
        if (dh.Length != 32) throw new OmemoException("the ratchet key is not 32 bytes");
        return (Protobuf.RequiredBytes(outer, 1), message, Protobuf.RequiredUInt(header, 1), Protobuf.RequiredUInt(header, 2), dh);
    }

    /// <summary>Opens the message with its key: the tag covers the identities and the whole message with its header
    /// (omemo:2: IK(initiator) ‖ IK(responder); legacy: IK(sender) ‖ IK(recipient)).</summary>
    private byte[] Open(byte[] key, byte[] mac, byte[] message) => Legacy
        ? Omemo.Legacy.OpenMessage(key, [.. AssociatedData[33..], .. AssociatedData[..33]], mac, message)
        : OmemoCrypto.OpenMessage(key, AssociatedData, mac, message);

    /// <summary>Decrypts an OMEMOAuthenticatedMessage (or SignalMessage); the session changes only if it authenticates.</summary>
    public byte[] Decrypt(byte[] authenticated)
    {
        var (mac, message, n, pn, dh) = Parse(authenticated, Legacy);

        var skippedKey = $"{Convert.ToHexString(dh)}:{n}";
        var skippedIndex = Skipped.FindIndex(s => s.Key == skippedKey);
        if (skippedIndex >= 0)
        {
            var plaintext = Open(Skipped[skippedIndex].Value, mac, message);
            Skipped.RemoveAt(skippedIndex);
            Confirm();
            return plaintext;
        }

        var next = Clone();
        if (!dh.AsSpan().SequenceEqual(next.TheirRatchetPublic))
        {
            if (next.ReceiveChain is not null) next.SkipTo(pn);
            next.TheirRatchetPublic = dh;
            (next.RootKey, next.ReceiveChain) = OmemoCrypto.RootStep(next.RootKey, Sodium.X25519(next.OwnRatchetPrivate, dh), Legacy);
            next.ReceiveCount = 0;
            next.OwnRatchetPrivate = RandomNumberGenerator.GetBytes(32);
            next.PreviousSendCount = next.SendCount;
            next.SendCount = 0;
            (next.RootKey, next.SendChain) = OmemoCrypto.RootStep(next.RootKey, Sodium.X25519(next.OwnRatchetPrivate, dh), Legacy);
        }
        if (n < next.ReceiveCount) throw new OmemoException($"message {n} of this chain was already decrypted (a replay or a duplicate)");
        next.SkipTo(n);
        var (chain, key) = OmemoCrypto.ChainStep(next.ReceiveChain!);
        var result = Open(key, mac, message);
        next.ReceiveChain = chain;
        next.ReceiveCount++;
        CopyFrom(next);
        Confirm();
        return result;
    }

    private void Confirm()
    {
        PendingKeyExchange = null;
        ReceivedSinceSent++;
    }

    private void SkipTo(uint until)
    {
        if (until > ReceiveCount && until - ReceiveCount > MaxSkip)
            throw new OmemoException($"the message skips more than {MaxSkip} messages");
        while (ReceiveCount < until)
        {
            var (chain, key) = OmemoCrypto.ChainStep(ReceiveChain!);
            Skipped.Add(new($"{Convert.ToHexString(TheirRatchetPublic)}:{ReceiveCount}", key));
            ReceiveChain = chain;
            ReceiveCount++;
        }
        if (Skipped.Count > MaxSkip) Skipped.RemoveRange(0, Skipped.Count - MaxSkip);
    }

    public RatchetSession Clone()
    {
        var copy = (RatchetSession)MemberwiseClone();
        copy.Skipped = [.. Skipped];
        return copy;
    }

    private void CopyFrom(RatchetSession other)
    {
        RootKey = other.RootKey;
        OwnRatchetPrivate = other.OwnRatchetPrivate;
        TheirRatchetPublic = other.TheirRatchetPublic;
        SendChain = other.SendChain;
        ReceiveChain = other.ReceiveChain;
        SendCount = other.SendCount;
        ReceiveCount = other.ReceiveCount;
        PreviousSendCount = other.PreviousSendCount;
        Skipped = other.Skipped;
    }
}
