using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Hosting;

namespace Candor.Server.Storage;

/// <summary>
/// A 256-bit master key as the sealing layer uses it: only keys derived from it with HKDF (RFC 5869) touch data.
/// Its id, also derived, is written in front of every record it seals, so that a record says which key opens it.
/// </summary>
public sealed class MasterKey
{
    public const int Bytes = 32;
    private readonly byte[] _sealKey;
    // AesGcm is not thread-safe and costs a key schedule to make: one per thread, not one per record.
    private readonly ThreadLocal<AesGcm> _aes;

    public MasterKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != Bytes) throw new ArgumentException($"a master key is {Bytes} bytes", nameof(key));
        _sealKey = Derive(key, 32, "candor record seal v1"u8);
        FileKey = Derive(key, 32, "candor file seal v1"u8);
        AuditLogSeed = Derive(key, 32, "candor audit log key v1"u8);
        Id = BinaryPrimitives.ReadUInt32BigEndian(Derive(key, 4, "candor key id v1"u8));
        _aes = new ThreadLocal<AesGcm>(() => new AesGcm(_sealKey, AesGcm.TagByteSizes.MaxSize));
    }

    public uint Id { get; }
    /// <summary>The key from which each sealed file's own key is derived (<see cref="SealedFile"/>).</summary>
    internal byte[] FileKey { get; }
    /// <summary>The operator log's Ed25519 key when the master key is a setting and no log key file exists (<see cref="Audit.AuditLog"/>).</summary>
    internal byte[] AuditLogSeed { get; }
    public string IdText => Id.ToString("x8");
    internal AesGcm Aes => _aes.Value!;

    public override string ToString() => IdText;

    private static byte[] Derive(ReadOnlySpan<byte> key, int length, ReadOnlySpan<byte> purpose)
    {
        var derived = new byte[length];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, derived, [], purpose);
        return derived;
    }
}

/// <summary>
/// The master keys this process holds: the one that seals new records and any others that still open old ones
/// (during a rotation). Readers take one snapshot, so a switch never tears a seal or an open.
/// </summary>
public sealed class KeyRing(MasterKey current)
{
    private volatile MasterKey[] _keys = [current];

    /// <summary>Seals every new record.</summary>
    public MasterKey Current => _keys[0];
    public IReadOnlyList<MasterKey> All => _keys;

    public MasterKey? Find(uint id)
    {
        foreach (var key in _keys)
            if (key.Id == id) return key;
        return null;
    }

    /// <summary>Seals with <paramref name="current"/> from now on and opens with it and <paramref name="others"/> only.</summary>
    public void Use(MasterKey current, params IEnumerable<MasterKey> others) =>
        _keys = [current, .. others.Where(k => k.Id != current.Id).DistinctBy(k => k.Id)];
}

/// <summary>
/// Where the master key lives and how a rotation is kept crash-safe on disk. The key is the setting MasterKey
/// (base64; <c>CANDOR__MASTERKEY</c>) or the file MasterKeyFile (default DATA/keys/master.key, mode 0600, made on
/// first start). A rotation writes the new key to <c>master.key.next</c> before sealing anything with it and renames
/// it over <c>master.key</c> only once no record needs the old key: at every instant the files on disk open every record.
/// A running server seals with <c>.next</c> as soon as it sees it and says so in DATA/keys/in-use.
/// </summary>
public sealed class KeyFiles(ServerOptions options)
{
    public string KeyPath { get; } = Path.GetFullPath(options.MasterKeyFile ?? Path.Combine(options.DataDirectory, "keys", "master.key"));
    public string NextPath => KeyPath + ".next";
    private string InUsePath { get; } = Path.Combine(options.DataDirectory, "keys", "in-use");
    /// <summary>Uploaded files (sealed with keys of this ring), resealed by a rotation too.</summary>
    public string UploadsPath { get; } = Path.Combine(options.DataDirectory, "uploads");

    public bool FromSetting => options.MasterKey is not null;

    /// <summary>Where the key comes from, for messages.</summary>
    public string Describe => FromSetting ? "the MasterKey setting (CANDOR__MASTERKEY)" : KeyPath;

    /// <summary>The keys on disk or in the setting; null when there is none.</summary>
    public KeyRing? Load()
    {
        if (options.MasterKey is { } setting) return new KeyRing(new MasterKey(ParseKey(setting, "MasterKey")));
        var key = ReadKeyFile(KeyPath);
        var next = ReadKeyFile(NextPath);
        if (key is null) return next is null ? null : new KeyRing(next);
        var ring = new KeyRing(key);
        if (next is not null) ring.Use(next, key);
        return ring;
    }

    /// <summary>Makes a new master key file; only for a database that nothing has sealed yet.</summary>
    public KeyRing Create()
    {
        var bytes = RandomNumberGenerator.GetBytes(MasterKey.Bytes);
        WriteKeyFile(KeyPath, bytes, replace: false);
        return new KeyRing(new MasterKey(bytes));
    }

    /// <summary>The key of an unfinished rotation, or a new one written to <see cref="NextPath"/>; it seals from now on.</summary>
    public MasterKey BeginRotation(KeyRing ring)
    {
        if (FromSetting)
            throw new KeyException("the master key comes from the MasterKey setting (CANDOR__MASTERKEY); 'candor key rotate' replaces a key file, so give the key as MasterKeyFile (a tmpfs your secrets manager fills will do)");
        var next = ReadKeyFile(NextPath);
        if (next is null)
        {
            var bytes = RandomNumberGenerator.GetBytes(MasterKey.Bytes);
            WriteKeyFile(NextPath, bytes, replace: false);
            next = new MasterKey(bytes);
        }
        ring.Use(next, ring.All);
        return next;
    }

    /// <summary>Makes the rotation's key the only one; call once no record is sealed with another.</summary>
    public void FinishRotation(KeyRing ring)
    {
        File.Move(NextPath, KeyPath, overwrite: true);
        ring.Use(ring.Current);
    }

    /// <summary>
    /// Brings a running server's keys up to date with the files: a rotation's new key seals from the moment it is
    /// seen (and <see cref="InUsePath"/> says so), and once the rotation is finished the old key is forgotten.
    /// Returns a line for the log when something changed.
    /// </summary>
    public string? Refresh(KeyRing ring)
    {
        if (FromSetting) return null;
        var next = ReadKeyFile(NextPath);
        if (next is not null)
        {
            if (next.Id == ring.Current.Id) return null;
            ring.Use(next, ring.All);
            MarkInUse(next);
            return $"key rotation: sealing with the new key {next.IdText} from now on";
        }
        var key = ReadKeyFile(KeyPath);
        if (key is null || ring.All.Count == 1 && key.Id == ring.Current.Id) return null;
        if (key.Id != ring.Current.Id)
            return ring.Find(key.Id) is null ? $"{KeyPath} now holds key {key.IdText}, which this server did not rotate to; it keeps sealing with {ring.Current.IdText} (use 'candor key rotate')" : null;
        ring.Use(ring.Current);
        return $"key rotation finished: only key {ring.Current.IdText} is kept";
    }

    /// <summary>Tells a rotation which key the running server seals with.</summary>
    public void MarkInUse(MasterKey key)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(InUsePath)!);
        File.WriteAllText(InUsePath + ".tmp", key.IdText + "\n");
        File.Move(InUsePath + ".tmp", InUsePath, overwrite: true);
    }

    /// <summary>Waits until the running server says it seals with <paramref name="key"/>.</summary>
    public async Task WaitInUseAsync(MasterKey key, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!(File.Exists(InUsePath) && File.ReadAllText(InUsePath).Trim() == key.IdText))
        {
            if (DateTime.UtcNow > deadline)
                throw new KeyException($"the running server did not start sealing with the new key within {timeout.TotalSeconds:0} s; run 'candor key rotate' again to finish (nothing is lost meanwhile)");
            await Task.Delay(100);
        }
    }

    internal static byte[] ParseKey(string text, string source)
    {
        var bytes = new byte[MasterKey.Bytes];
        if (!Convert.TryFromBase64String(text.Trim(), bytes, out var length) || length != MasterKey.Bytes)
            throw new KeyException($"{source} is not a base64 256-bit key");
        return bytes;
    }

    private static MasterKey? ReadKeyFile(string path)
    {
        // Checked first: a running server looks for master.key.next every second, and it is nearly always absent.
        if (!File.Exists(path)) return null;
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.ASCII);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyException($"cannot read the master key file {path}: {e.Message}");
        }
        return new MasterKey(ParseKey(text, $"the master key file {path}"));
    }

    /// <summary>Writes a key file readable by its owner only, durably, appearing under its name complete or not at all.</summary>
    internal static void WriteKeyFile(string path, byte[] key, bool replace = false)
    {
        var directory = Path.GetDirectoryName(path)!;
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(directory);
        else Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var temporary = path + ".tmp";
        File.Delete(temporary);
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var file = new FileStream(temporary, create))
        {
            file.Write(Encoding.ASCII.GetBytes(Convert.ToBase64String(key) + "\n"));
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, replace);
    }
}

/// <summary>The master key is missing, wrong or unreadable: the server must not start on it.</summary>
public sealed class KeyException(string message) : Exception(message);
