using System.Security.Cryptography;
using System.Text;

namespace Candor.Xmpp.Sasl;

public enum ScramAlgorithm
{
    Sha1,
    Sha256,
}

public static class ScramAlgorithms
{
    public static string MechanismName(this ScramAlgorithm a, bool plus) => (a, plus) switch
    {
        (ScramAlgorithm.Sha1, false) => "SCRAM-SHA-1",
        (ScramAlgorithm.Sha1, true) => "SCRAM-SHA-1-PLUS",
        (ScramAlgorithm.Sha256, false) => "SCRAM-SHA-256",
        (ScramAlgorithm.Sha256, true) => "SCRAM-SHA-256-PLUS",
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, null),
    };

    public static int HashSize(this ScramAlgorithm a) => a switch
    {
        ScramAlgorithm.Sha1 => SHA1.HashSizeInBytes,
        ScramAlgorithm.Sha256 => SHA256.HashSizeInBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, null),
    };

    internal static byte[] Hash(this ScramAlgorithm a, ReadOnlySpan<byte> data) =>
        a == ScramAlgorithm.Sha1 ? SHA1.HashData(data) : SHA256.HashData(data);

    internal static byte[] Hmac(this ScramAlgorithm a, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) =>
        a == ScramAlgorithm.Sha1 ? HMACSHA1.HashData(key, data) : HMACSHA256.HashData(key, data);

    internal static byte[] Hmac(this ScramAlgorithm a, ReadOnlySpan<byte> key, string data) =>
        a.Hmac(key, Encoding.UTF8.GetBytes(data));

    /// <summary>SaltedPassword := Hi(Normalize(password), salt, i), RFC 5802 §3.</summary>
    internal static byte[] SaltedPassword(this ScramAlgorithm a, string password, byte[] salt, int iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(salt);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        if (salt.Length == 0)
            throw new ArgumentException("The salt is empty.", nameof(salt));
        string prepared = Precis.PrepareOpaqueString(password)
            ?? throw new ArgumentException("The password is empty or contains a disallowed character.", nameof(password));
        var hash = a == ScramAlgorithm.Sha1 ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256;
        return Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(prepared), salt, iterations, hash, a.HashSize());
    }
}
