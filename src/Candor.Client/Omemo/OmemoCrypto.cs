using System.Security.Cryptography;
using System.Text;

namespace Candor.Client.Omemo;

/// <summary>Why an OMEMO message could not be decrypted or a session not built; shown to the user as the reason.</summary>
public class OmemoException(string message) : Exception(message);

/// <summary>The symmetric constructions of urn:xmpp:omemo:2 (XEP-0384 §4), from .NET's HKDF, HMAC and AES.</summary>
internal static class OmemoCrypto
{
    public const int TagLength = 16;
    private static readonly byte[] Zeros = new byte[32];
    private static readonly byte[] ChainConstant = [0x02];
    private static readonly byte[] MessageConstant = [0x01];
    private static readonly byte[] RootInfo = Encoding.ASCII.GetBytes("OMEMO Root Chain");
    private static readonly byte[] MessageInfo = Encoding.ASCII.GetBytes("OMEMO Message Key Material");
    private static readonly byte[] PayloadInfo = Encoding.ASCII.GetBytes("OMEMO Payload");
    private static readonly byte[] X3dhInfo = Encoding.ASCII.GetBytes("OMEMO X3DH");

    /// <summary>X3DH: HKDF-SHA-256 over 32 0xFF bytes and the DH outputs, zero salt (legacy: libsignal's label).</summary>
    public static byte[] X3dhSecret(bool legacy, params byte[][] dhs)
    {
        var ikm = new byte[32 + dhs.Sum(d => d.Length)];
        ikm.AsSpan(0, 32).Fill(0xFF);
        var at = 32;
        foreach (var dh in dhs)
        {
            dh.CopyTo(ikm, at);
            at += dh.Length;
        }
        return HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, 32, Zeros, legacy ? Legacy.X3dhInfo : X3dhInfo);
    }

    /// <summary>The root chain step: (new root key, new chain key).</summary>
    public static (byte[] Root, byte[] Chain) RootStep(byte[] root, byte[] dh, bool legacy)
    {
        var output = HKDF.DeriveKey(HashAlgorithmName.SHA256, dh, 64, root, legacy ? Legacy.RootInfo : RootInfo);
        return (output[..32], output[32..]);
    }

    /// <summary>The message chain step: (new chain key, message key) = (HMAC(ck, 0x02), HMAC(ck, 0x01)).</summary>
    public static (byte[] Chain, byte[] MessageKey) ChainStep(byte[] chain) =>
        (HMACSHA256.HashData(chain, ChainConstant), HMACSHA256.HashData(chain, MessageConstant));

    private static (byte[] Enc, byte[] Auth, byte[] Iv) Split(byte[] key, byte[] info)
    {
        var material = HKDF.DeriveKey(HashAlgorithmName.SHA256, key, 80, Zeros, info);
        return (material[..32], material[32..64], material[64..]);
    }

    internal static byte[] CbcEncrypt(byte[] key, byte[] iv, byte[] plaintext)
    {
        using var aes = Aes.Create();
        aes.Key = key;
        return aes.EncryptCbc(plaintext, iv, PaddingMode.PKCS7);
    }

    internal static byte[] CbcDecrypt(byte[] key, byte[] iv, byte[] ciphertext)
    {
        using var aes = Aes.Create();
        aes.Key = key;
        try
        {
            return aes.DecryptCbc(ciphertext, iv, PaddingMode.PKCS7);
        }
        catch (CryptographicException)
        {
            throw new OmemoException("the ciphertext does not decrypt (bad padding)");
        }
    }

    private static byte[] Tag(byte[] key, byte[] data) => HMACSHA256.HashData(key, data)[..TagLength];

    /// <summary>The Double Ratchet's AEAD: an OMEMOAuthenticatedMessage carrying the header and the ciphertext.</summary>
    public static byte[] SealMessage(byte[] messageKey, byte[] ad, uint n, uint pn, byte[] dhPub, byte[] plaintext)
    {
        var (enc, auth, iv) = Split(messageKey, MessageInfo);
        var message = new Protobuf.Writer().UInt(1, n).UInt(2, pn).Bytes(3, dhPub).Bytes(4, CbcEncrypt(enc, iv, plaintext)).ToArray();
        return new Protobuf.Writer().Bytes(1, Tag(auth, [.. ad, .. message])).Bytes(2, message).ToArray();
    }

    public static byte[] OpenMessage(byte[] messageKey, byte[] ad, byte[] mac, byte[] message)
    {
        var (enc, auth, iv) = Split(messageKey, MessageInfo);
        if (!CryptographicOperations.FixedTimeEquals(Tag(auth, [.. ad, .. message]), mac))
            throw new OmemoException("the message's authentication tag does not match (tampered, or not for this session)");
        var fields = Protobuf.Read(message);
        return CbcDecrypt(enc, iv, fields.TryGetValue(4, out var c) ? (byte[])c : []);
    }

    /// <summary>The payload (the SCE envelope) under a fresh key: (ciphertext, key material = key ‖ tag).</summary>
    public static (byte[] Ciphertext, byte[] KeyMaterial) SealPayload(byte[] plaintext)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var (enc, auth, iv) = Split(key, PayloadInfo);
        var ciphertext = CbcEncrypt(enc, iv, plaintext);
        return (ciphertext, [.. key, .. Tag(auth, ciphertext)]);
    }

    public static byte[] OpenPayload(byte[] keyMaterial, byte[] ciphertext)
    {
        if (keyMaterial.Length != 32 + TagLength) throw new OmemoException("the key material is not 48 bytes");
        var (enc, auth, iv) = Split(keyMaterial[..32], PayloadInfo);
        if (!CryptographicOperations.FixedTimeEquals(Tag(auth, ciphertext), keyMaterial[32..]))
            throw new OmemoException("the payload's authentication tag does not match (tampered)");
        return CbcDecrypt(enc, iv, ciphertext);
    }
}
