using System.Runtime.InteropServices;

namespace Candor.Client.Omemo;

/// <summary>
/// The libsodium functions NSec does not expose, called in the same native library NSec loads: raw X25519 (X3DH
/// concatenates the four DH outputs before HKDF, which NSec's opaque SharedSecret cannot give) and the birational
/// map from Ed25519 keys to X25519 keys (omemo:2 identity keys are Ed25519, used for X3DH as X25519).
/// </summary>
internal static partial class Sodium
{
    private const string Library = "libsodium";

    [DllImport(Library)] private static extern int sodium_init();
    [DllImport(Library)] private static extern int crypto_scalarmult(byte[] q, byte[] n, byte[] p);
    [DllImport(Library)] private static extern int crypto_scalarmult_base(byte[] q, byte[] n);
    [DllImport(Library)] private static extern int crypto_sign_ed25519_pk_to_curve25519(byte[] curve, byte[] ed);
    [DllImport(Library)] private static extern int crypto_sign_ed25519_sk_to_curve25519(byte[] curve, byte[] ed);
    [DllImport(Library)] private static extern int crypto_sign_seed_keypair(byte[] pk, byte[] sk, byte[] seed);

    static Sodium()
    {
        // NSec resolves the native library for this process; touching it first makes the DllImports find it.
        _ = NSec.Cryptography.SignatureAlgorithm.Ed25519;
        if (sodium_init() < 0) throw new InvalidOperationException("libsodium failed to initialise");
    }

    /// <summary>X25519(priv, pub); throws for a low-order public key (an all-zero result).</summary>
    public static byte[] X25519(byte[] priv, byte[] pub)
    {
        if (priv.Length != 32 || pub.Length != 32) throw new OmemoException("a key is not 32 bytes");
        var q = new byte[32];
        if (crypto_scalarmult(q, priv, pub) != 0) throw new OmemoException("a key is of low order");
        return q;
    }

    public static byte[] X25519Public(byte[] priv)
    {
        var q = new byte[32];
        crypto_scalarmult_base(q, priv);
        return q;
    }

    public static byte[] EdToCurvePublic(byte[] ed)
    {
        if (ed.Length != 32) throw new OmemoException("an identity key is not 32 bytes");
        var curve = new byte[32];
        if (crypto_sign_ed25519_pk_to_curve25519(curve, ed) != 0) throw new OmemoException("an identity key is not a valid Ed25519 point");
        return curve;
    }

    /// <summary>The X25519 private key of an Ed25519 seed: SHA-512(seed)[..32], clamped.</summary>
    public static byte[] EdSeedToCurvePrivate(byte[] seed)
    {
        var pk = new byte[32];
        var sk = new byte[64];
        crypto_sign_seed_keypair(pk, sk, seed);
        var curve = new byte[32];
        crypto_sign_ed25519_sk_to_curve25519(curve, sk);
        Array.Clear(sk);
        return curve;
    }
}
