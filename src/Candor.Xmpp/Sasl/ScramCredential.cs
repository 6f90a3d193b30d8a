using System.Security.Cryptography;

namespace Candor.Xmpp.Sasl;

/// <summary>What a server stores for SCRAM (RFC 5802 §3); the password itself is not recoverable from it.</summary>
public sealed record ScramCredential(ScramAlgorithm Algorithm, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    public const int DefaultIterations = 4096;
    public const int SaltSize = 16;

    /// <summary>Derives the keys; the password is prepared with the OpaqueString profile (RFC 8265).</summary>
    public static ScramCredential Derive(ScramAlgorithm algorithm, string password, byte[] salt, int iterations)
    {
        byte[] saltedPassword = algorithm.SaltedPassword(password, salt, iterations);
        byte[] clientKey = algorithm.Hmac(saltedPassword, "Client Key");
        byte[] serverKey = algorithm.Hmac(saltedPassword, "Server Key");
        return new ScramCredential(algorithm, salt, iterations, algorithm.Hash(clientKey), serverKey);
    }

    public static ScramCredential Create(ScramAlgorithm algorithm, string password, int iterations) =>
        Derive(algorithm, password, RandomNumberGenerator.GetBytes(SaltSize), iterations);

    /// <summary>Checks a plain-text password (as from SASL PLAIN) against this credential.</summary>
    public bool Verify(string password)
    {
        if (Precis.PrepareOpaqueString(password) is null)
            return false;
        ScramCredential candidate = Derive(Algorithm, password, Salt, Iterations);
        return CryptographicOperations.FixedTimeEquals(candidate.StoredKey, StoredKey);
    }
}
