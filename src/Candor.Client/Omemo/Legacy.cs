using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Candor.Client.Omemo;

/// <summary>
/// The legacy OMEMO wire format, eu.siacs.conversations.axolotl (XEP-0384 0.3, as libsignal speaks it and as
/// Conversations, Gajim, Dino, Monal, profanity and Converse.js use it): Curve25519 keys serialised with the 0x05 type
/// byte, version byte 0x33, SignalMessage MACs truncated to 8 bytes over sender IK ‖ recipient IK ‖ message,
/// libsignal's KDF labels, XEdDSA signed pre-keys and an AES-128-GCM payload whose tag travels with the key.
/// </summary>
internal static class Legacy
{
    public const string Namespace = "eu.siacs.conversations.axolotl";
    public const string DevicesNode = Namespace + ".devicelist";
    public static string BundleNode(uint device) => $"{Namespace}.bundles:{device}";

    private const byte Version = 0x33;
    private const byte KeyType = 0x05;
    private const int MacLength = 8;
    public const int PayloadKeyLength = 16;
    private const int IvLength = 12;
    public static readonly byte[] X3dhInfo = Encoding.ASCII.GetBytes("WhisperText");
    public static readonly byte[] RootInfo = Encoding.ASCII.GetBytes("WhisperRatchet");
    private static readonly byte[] MessageInfo = Encoding.ASCII.GetBytes("WhisperMessageKeys");
    private static readonly BigInteger P = BigInteger.Pow(2, 255) - 19;

    /// <summary>A Curve25519 public key in libsignal's form: 0x05 ‖ 32 bytes.</summary>
    public static byte[] Serialize(byte[] curvePublic) => [KeyType, .. curvePublic];

    public static byte[] Deserialize(byte[] serialized) =>
        serialized.Length == 33 && serialized[0] == KeyType ? serialized[1..]
            : throw new OmemoException("a key is not a serialised Curve25519 key (0x05 and 32 bytes)");

    /// <summary>The identity key as the legacy format carries it: the Ed25519 key's Montgomery (Curve25519) form.</summary>
    public static byte[] SerializeIdentity(byte[] ed25519) => Serialize(Sodium.EdToCurvePublic(ed25519));

    /// <summary>
    /// The Ed25519 form of a Curve25519 public key (the birational map y = (u − 1)/(u + 1) over public values), with the
    /// sign bit XEdDSA carries in the top bit of the signature. Legacy identity keys are published in this form only.
    /// </summary>
    public static byte[] CurveToEdPublic(byte[] curve, bool signBit)
    {
        if (curve.Length != 32) throw new OmemoException("a Curve25519 key is not 32 bytes");
        var masked = curve.ToArray();
        masked[31] &= 0x7F;
        var u = new BigInteger(masked, isUnsigned: true);
        if (u >= P || (u + 1) % P == 0) throw new OmemoException("an identity key is not a valid Curve25519 key");
        var y = (u - 1 + P) * BigInteger.ModPow(u + 1, P - 2, P) % P;
        var ed = new byte[32];
        y.TryWriteBytes(ed, out _, isUnsigned: true);
        if (signBit) ed[31] |= 0x80;
        return ed;
    }

    /// <summary>
    /// The signature over 0x05 ‖ signed pre-key: a plain Ed25519 signature by the identity key (which an XEdDSA verifier
    /// accepts), with the identity key's sign bit in the top bit, as libsignal's curve25519_verify and python-omemo read it.
    /// </summary>
    public static byte[] Sign(byte[] identitySeed, byte[] identityPublic, byte[] signedPreKey)
    {
        using var key = Key.Import(SignatureAlgorithm.Ed25519, identitySeed, KeyBlobFormat.RawPrivateKey);
        var signature = SignatureAlgorithm.Ed25519.Sign(key, Serialize(signedPreKey));
        signature[63] |= (byte)(identityPublic[31] & 0x80);
        return signature;
    }

    /// <summary>Splits a published signature into the sign bit of the identity key and the Ed25519 signature.</summary>
    public static (bool SignBit, byte[] Signature) SplitSignature(byte[] signature)
    {
        if (signature.Length != 64) throw new OmemoException("the signed pre-key signature is not 64 bytes");
        var plain = signature.ToArray();
        plain[63] &= 0x7F;
        return ((signature[63] & 0x80) != 0, plain);
    }

    /// <summary>A SignalMessage: 0x33 ‖ protobuf(ratchet key, counter, previous counter, ciphertext) ‖ 8-byte MAC.</summary>
    public static byte[] SealMessage(byte[] messageKey, byte[] senderThenRecipient, uint n, uint pn, byte[] dhPub, byte[] plaintext)
    {
        var (enc, auth, iv) = Split(messageKey);
        byte[] message = [Version, .. new Protobuf.Writer().Bytes(1, Serialize(dhPub)).UInt(2, n).UInt(3, pn)
            .Bytes(4, OmemoCrypto.CbcEncrypt(enc, iv, plaintext)).ToArray()];
        return [.. message, .. Mac(auth, senderThenRecipient, message)];
    }

    /// <summary>The header of a SignalMessage: (MAC, the bytes it covers, counter, previous counter, ratchet key).</summary>
    public static (byte[] Mac, byte[] Message, uint N, uint Pn, byte[] Dh) ParseMessage(byte[] data)
    {
        if (data.Length < 1 + MacLength || data[0] != Version) throw new OmemoException("not a version 3 SignalMessage");
        var message = data[..^MacLength];
        var fields = Protobuf.Read(message[1..]);
        return (data[^MacLength..], message, Protobuf.RequiredUInt(fields, 2), Protobuf.RequiredUInt(fields, 3),
            Deserialize(Protobuf.RequiredBytes(fields, 1)));
    }

    public static byte[] OpenMessage(byte[] messageKey, byte[] senderThenRecipient, byte[] mac, byte[] message)
    {
        var (enc, auth, iv) = Split(messageKey);
        if (!CryptographicOperations.FixedTimeEquals(Mac(auth, senderThenRecipient, message), mac))
            throw new OmemoException("the message's authentication tag does not match (tampered, or not for this session)");
        var fields = Protobuf.Read(message[1..]);
        return OmemoCrypto.CbcDecrypt(enc, iv, fields.TryGetValue(4, out var c) ? (byte[])c : []);
    }

    private static byte[] Mac(byte[] key, byte[] senderThenRecipient, byte[] message) =>
        HMACSHA256.HashData(key, (byte[])[.. senderThenRecipient, .. message])[..MacLength];

    private static (byte[] Enc, byte[] Auth, byte[] Iv) Split(byte[] key)
    {
        var material = HKDF.DeriveKey(HashAlgorithmName.SHA256, key, 80, new byte[32], MessageInfo);
        return (material[..32], material[32..64], material[64..]);
    }

    /// <summary>A PreKeySignalMessage: 0x33 ‖ protobuf(pre-key id, base key, identity key, message, signed pre-key id).</summary>
    public static byte[] WrapKeyExchange(KeyExchange kex, byte[] signalMessage) =>
        [Version, .. new Protobuf.Writer().UInt(1, kex.PreKeyId).Bytes(2, Serialize(kex.EphemeralKey))
            .Bytes(3, SerializeIdentity(kex.IdentityKey)).Bytes(4, signalMessage).UInt(6, kex.SignedPreKeyId).ToArray()];

    /// <summary>The key exchange of a PreKeySignalMessage; its identity key in Ed25519 form with sign bit 0 (the
    /// format does not carry it; identities are compared in their Curve25519 form).</summary>
    public static (KeyExchange Header, byte[] Message) UnwrapKeyExchange(byte[] data)
    {
        if (data.Length < 1 || data[0] != Version) throw new OmemoException("not a version 3 PreKeySignalMessage");
        var f = Protobuf.Read(data[1..]);
        return (new KeyExchange(Protobuf.RequiredUInt(f, 1), Protobuf.RequiredUInt(f, 6),
            CurveToEdPublic(Deserialize(Protobuf.RequiredBytes(f, 3)), false), Deserialize(Protobuf.RequiredBytes(f, 2))),
            Protobuf.RequiredBytes(f, 4));
    }

    /// <summary>The payload: AES-128-GCM under a fresh key and 12-byte IV; the key material is key ‖ tag.</summary>
    public static (byte[] Ciphertext, byte[] Iv, byte[] KeyMaterial) SealPayload(byte[] plaintext)
    {
        var key = RandomNumberGenerator.GetBytes(PayloadKeyLength);
        var iv = RandomNumberGenerator.GetBytes(IvLength);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[16];
        using (var gcm = new AesGcm(key, 16)) gcm.Encrypt(iv, plaintext, ciphertext, tag);
        return (ciphertext, iv, [.. key, .. tag]);
    }

    /// <summary>Opens a payload; the tag comes with the key (32 bytes of key material) or, from old clients that send
    /// only the 16-byte key, at the end of the payload.</summary>
    public static byte[] OpenPayload(byte[] keyMaterial, byte[] iv, byte[] payload)
    {
        if (iv.Length != IvLength) throw new OmemoException($"the payload's IV is {iv.Length} bytes; only 12-byte IVs are supported");
        var (ciphertext, tag) = keyMaterial.Length switch
        {
            32 => (payload, keyMaterial[16..]),
            16 when payload.Length >= 16 => (payload[..^16], payload[^16..]),
            _ => throw new OmemoException($"the key material is {keyMaterial.Length} bytes, neither key ‖ tag nor a key"),
        };
        var plaintext = new byte[ciphertext.Length];
        try
        {
            using var gcm = new AesGcm(keyMaterial[..16], 16);
            gcm.Decrypt(iv, ciphertext, tag, plaintext);
        }
        catch (CryptographicException)
        {
            throw new OmemoException("the payload's authentication tag does not match (tampered)");
        }
        return plaintext;
    }
}
