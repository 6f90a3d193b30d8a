using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Candor.Client.Omemo;

/// <summary>How far a remote device is trusted (XEP-0384 §6, BTBV: blind trust before verification).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Trust>))]
public enum Trust { Blind, Verified, Distrusted, Undecided }

/// <summary>A device of a contact (or of the account itself) as seen in its device list and bundle.</summary>
public sealed class KnownDevice
{
    public byte[] IdentityKey { get; set; } = [];
    public Trust Trust { get; set; }
}

/// <summary>
/// Everything OMEMO keeps for one account on this machine: the own device's keys, sessions with other devices, the
/// identity keys and trust decisions of other devices. Saved as one file sealed with AES-256-GCM (see
/// <see cref="OmemoStateFile"/>).
/// </summary>
public sealed class OmemoState
{
    public OwnDevice Device { get; set; } = OwnDevice.Create();
    /// <summary>"bare JID/device id" → session.</summary>
    public Dictionary<string, RatchetSession> Sessions { get; set; } = [];
    /// <summary>The same for eu.siacs.conversations.axolotl (a device id may have a session in each namespace).</summary>
    public Dictionary<string, RatchetSession> LegacySessions { get; set; } = [];
    /// <summary>bare JID → device id → identity and trust.</summary>
    public Dictionary<string, Dictionary<uint, KnownDevice>> Devices { get; set; } = [];

    public static string SessionKey(string bare, uint device) => $"{bare}/{device}";

    public Dictionary<string, RatchetSession> SessionsOf(bool legacy) => legacy ? LegacySessions : Sessions;

    /// <summary>
    /// Records a device's identity key, deciding its trust by BTBV: blind while none of the contact's devices is
    /// verified, undecided (not encrypted to until the user decides) once one is. A different identity key for a
    /// known device id is distrusted. Identities are compared in their Curve25519 form, which is what the fingerprint
    /// shows and all the legacy format carries. Returns true when the device is new.
    /// </summary>
    public bool Learn(string bare, uint device, byte[] identityKey)
    {
        var devices = Devices.TryGetValue(bare, out var d) ? d : Devices[bare] = [];
        if (devices.TryGetValue(device, out var known))
        {
            if (!Sodium.EdToCurvePublic(known.IdentityKey).AsSpan().SequenceEqual(Sodium.EdToCurvePublic(identityKey)))
            {
                known.IdentityKey = identityKey;
                known.Trust = Trust.Distrusted;
                return true;
            }
            return false;
        }
        var anyVerified = devices.Values.Any(k => k.Trust == Trust.Verified);
        devices[device] = new KnownDevice { IdentityKey = identityKey, Trust = anyVerified ? Trust.Undecided : Trust.Blind };
        return true;
    }

    public Trust TrustOf(string bare, uint device) =>
        Devices.TryGetValue(bare, out var d) && d.TryGetValue(device, out var k) ? k.Trust : Trust.Undecided;

    /// <summary>
    /// The fingerprint as Conversations, Gajim and Dino show it: the identity key as an X25519 (Curve25519) public key,
    /// 64 lowercase hex digits in groups of 8.
    /// </summary>
    public static string Fingerprint(byte[] ed25519IdentityKey)
    {
        var hex = Convert.ToHexStringLower(Sodium.EdToCurvePublic(ed25519IdentityKey));
        return string.Join(' ', Enumerable.Range(0, 8).Select(i => hex.Substring(i * 8, 8)));
    }

    public static bool SameFingerprint(string a, string b) =>
        string.Equals(a.Replace(" ", "").Replace(":", ""), b.Replace(" ", "").Replace(":", ""), StringComparison.OrdinalIgnoreCase);
}

/// <summary>Where the key that seals a new state file comes from. An existing file keeps the sealing it records.</summary>
public enum OmemoKeySource
{
    /// <summary>The passphrase when one is given, else the OS keyring when it answers, else the key file.</summary>
    Auto,
    Passphrase,
    Keyring,
    File,
}

/// <summary>
/// The sealed state file: JSON of <see cref="OmemoState"/> encrypted with AES-256-GCM under a key derived by
/// PBKDF2-SHA-256 (600,000 iterations, random salt) from a passphrase, kept in the OS keyring
/// (<see cref="OmemoKeyring"/>), or read from a key file of 32 random bytes (created with mode 0600 beside the
/// state). A new file is sealed as <paramref name="source"/> says; the file records which one it is ("pbkdf2-sha256",
/// "secret-service", "keyfile"), and an existing file is opened that way whatever the source, or not at all.
/// </summary>
public sealed class OmemoStateFile(string path, string? passphrase, string keyFile, OmemoKeySource source = OmemoKeySource.Auto,
    OmemoKeyring? keyring = null)
{
    private const int Iterations = 600_000;
    private const string Pbkdf2 = "pbkdf2-sha256";
    private const string SecretService = "secret-service";
    private const string KeyFile = "keyfile";
    private sealed record Sealed(int Version, string Kdf, byte[] Salt, int Iterations, byte[] Nonce, byte[] Ciphertext, byte[] Tag);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };
    private byte[]? _key;
    private byte[]? _salt;
    private string? _kdf;

    public string Path => path;

    /// <summary>Opens the state, or makes a new one and its key (a new keyring item or key file) when there is no file.</summary>
    public async Task<OmemoState> LoadOrCreateAsync(CancellationToken cancellation = default)
    {
        if (!File.Exists(path))
        {
            _salt = RandomNumberGenerator.GetBytes(16);
            (_kdf, _key) = await NewKeyAsync(_salt, cancellation);
            return new OmemoState();
        }
        var sealedState = JsonSerializer.Deserialize<Sealed>(File.ReadAllBytes(path))
            ?? throw new OmemoException($"{path} is not an OMEMO state file");
        _salt = sealedState.Salt;
        _kdf = sealedState.Kdf;
        _key = await ExistingKeyAsync(sealedState, cancellation);
        var plaintext = new byte[sealedState.Ciphertext.Length];
        try
        {
            using var gcm = new AesGcm(_key, 16);
            gcm.Decrypt(sealedState.Nonce, sealedState.Ciphertext, sealedState.Tag, plaintext, Encoding.ASCII.GetBytes(path));
        }
        catch (CryptographicException)
        {
            throw new OmemoException($"cannot open {path}: wrong passphrase, key file or keyring item, or the file was changed");
        }
        return JsonSerializer.Deserialize<OmemoState>(plaintext, Json) ?? throw new OmemoException($"{path} holds no state");
    }

    public void Save(OmemoState state)
    {
        if (_kdf is not { } kdf || _key is not { } key || _salt is not { } salt) throw new InvalidOperationException("LoadOrCreateAsync first");
        var plaintext = JsonSerializer.SerializeToUtf8Bytes(state, Json);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[16];
        using (var gcm = new AesGcm(key, 16)) gcm.Encrypt(nonce, plaintext, ciphertext, tag, Encoding.ASCII.GetBytes(path));
        CryptographicOperations.ZeroMemory(plaintext);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var temporary = path + ".new";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(new Sealed(1, kdf, salt, Iterations, nonce, ciphertext, tag)));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temporary, path, overwrite: true);
    }

    private async Task<(string Kdf, byte[] Key)> NewKeyAsync(byte[] salt, CancellationToken cancellation)
    {
        switch (source)
        {
            case OmemoKeySource.Passphrase or OmemoKeySource.Auto when passphrase is not null:
                return (Pbkdf2, Rfc2898DeriveBytes.Pbkdf2(passphrase, salt, Iterations, HashAlgorithmName.SHA256, 32));
            case OmemoKeySource.Passphrase:
                throw new OmemoException("sealing with a passphrase was asked for, but none is given (CANDOR_OMEMO_PASSPHRASE)");
            case OmemoKeySource.Keyring:
                return (SecretService, await (keyring ?? throw new OmemoException("sealing with the OS keyring was asked for, but no keyring is given"))
                    .CreateKeyAsync(path, cancellation));
            case OmemoKeySource.Auto when keyring is not null:
                try
                {
                    return (SecretService, await keyring.CreateKeyAsync(path, cancellation));
                }
                catch (OmemoKeyringUnavailableException)
                {
                    return (KeyFile, CreateKeyFile());
                }
            default:
                return (KeyFile, CreateKeyFile());
        }
    }

    private async Task<byte[]> ExistingKeyAsync(Sealed sealedState, CancellationToken cancellation)
    {
        switch (sealedState.Kdf)
        {
            case Pbkdf2:
                if (passphrase is null) throw new OmemoException($"{path} is sealed with a passphrase: set CANDOR_OMEMO_PASSPHRASE");
                return Rfc2898DeriveBytes.Pbkdf2(passphrase, sealedState.Salt, sealedState.Iterations, HashAlgorithmName.SHA256, 32);
            case SecretService:
                try
                {
                    return await (keyring ?? throw new OmemoKeyringUnavailableException("this program was given no OS keyring"))
                        .ReadKeyAsync(path, cancellation);
                }
                catch (OmemoException e)
                {
                    throw new OmemoException($"{path} is sealed with a key in the OS keyring, which cannot give it: {e.Message}");
                }
            case KeyFile:
                if (!File.Exists(keyFile)) throw new OmemoException($"{path} is sealed with the key file {keyFile}, which is missing");
                return ReadKeyFile();
            default:
                throw new OmemoException($"{path} is sealed with '{sealedState.Kdf}', which this version of Candor does not know");
        }
    }

    /// <summary>The key file, made first when there is none.</summary>
    private byte[] CreateKeyFile()
    {
        if (!File.Exists(keyFile))
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(keyFile)!);
            using var stream = OperatingSystem.IsWindows() ? File.Create(keyFile)
                : new FileStream(keyFile, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
            stream.Write(RandomNumberGenerator.GetBytes(32));
        }
        return ReadKeyFile();
    }

    private byte[] ReadKeyFile()
    {
        var bytes = File.ReadAllBytes(keyFile);
        return bytes.Length == 32 ? bytes : throw new OmemoException($"the key file {keyFile} is not 32 bytes");
    }
}
