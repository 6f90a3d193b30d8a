using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Upload;

/// <summary>What is known of an upload: from its slot, and sealed in the file's metadata once it is stored.</summary>
public sealed record UploadInfo(string Owner, long Size, string ContentType, string FileName, DateTimeOffset Created);

/// <summary>
/// The uploaded files (sealed, in DATA/uploads; a key rotation reseals them) and the slots handed out for them. A slot's URL carries a 192-bit
/// random token; on disk a file is named by a hash of the token, so a listing of the folder reveals no URL.
/// The index of stored files (owner, size, date) is read from their sealed metadata at start and kept in memory.
/// </summary>
public sealed class UploadService : IDisposable
{
    /// <summary>How long a slot waits for its PUT.</summary>
    public static readonly TimeSpan SlotLifetime = TimeSpan.FromMinutes(5);
    private const string Extension = ".cndf";

    private readonly ServerOptions _options;
    private readonly KeyRing _keys;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, UploadInfo> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UploadInfo> _slots = new(StringComparer.Ordinal);
    private readonly Lock _quota = new();
    private readonly Timer _sweep;

    public UploadService(ServerOptions options, KeyRing keys, string directory, ILogger log)
    {
        _options = options;
        _keys = keys;
        _log = log;
        Directory = directory;
        System.IO.Directory.CreateDirectory(Directory);
        LoadIndex();
        _sweep = new Timer(_ => Sweep(DateTimeOffset.UtcNow), null, TimeSpan.Zero, TimeSpan.FromHours(1));
    }

    public string Directory { get; }
    /// <summary>Where /upload/ is reached from outside, without a trailing slash; set once the listeners listen.</summary>
    public Func<string> BaseUrl { get; set; } = () => "";

    public string Url(string token, string fileName) =>
        $"{BaseUrl().TrimEnd('/')}{UploadHttp.Path}/{token}/{Uri.EscapeDataString(fileName)}";

    /// <summary>A new slot's token, or null with the reason when the account's quota has no room for it.</summary>
    public (string? Token, string? Refusal) CreateSlot(UploadInfo info)
    {
        lock (_quota)
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var (name, slot) in _slots)
                if (now - slot.Created > SlotLifetime) _slots.TryRemove(name, out _);
            if (_options.UploadQuotaBytes > 0)
            {
                var used = _files.Values.Where(f => f.Owner == info.Owner).Sum(f => f.Size) + _slots.Values.Where(s => s.Owner == info.Owner).Sum(s => s.Size);
                if (used + info.Size > _options.UploadQuotaBytes)
                    return (null, $"This upload would exceed the account's quota: {used} of {_options.UploadQuotaBytes} bytes are in use; uploads are deleted after {_options.UploadRetentionDays} days.");
            }
            var token = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(24));
            _slots[NameOf(token)] = info;
            return (token, null);
        }
    }

    /// <summary>The stored file a URL token names, or null.</summary>
    public UploadInfo? Find(string token, out string path)
    {
        var name = NameOf(token);
        path = PathOf(name);
        return _files.GetValueOrDefault(name);
    }

    public SealedFile.Reader Open(string token) => SealedFile.Open(PathOf(NameOf(token)), _keys, NameOf(token));

    public enum Claim { Claimed, Stored, Unknown }

    /// <summary>Takes the token's slot for one PUT (a second PUT at once finds it taken); <see cref="Release"/> gives it back on failure.</summary>
    public Claim TryClaim(string token, out UploadInfo? slot)
    {
        var name = NameOf(token);
        if (_slots.TryRemove(name, out slot)) return DateTimeOffset.UtcNow - slot.Created > SlotLifetime ? Claim.Unknown : Claim.Claimed;
        return _files.ContainsKey(name) ? Claim.Stored : Claim.Unknown;
    }

    public void Release(string token, UploadInfo slot) => _slots.TryAdd(NameOf(token), slot);

    /// <summary>Seals the request body into the slot's file; throws <see cref="InvalidDataException"/> when it does not match the slot.</summary>
    public async Task StoreAsync(string token, UploadInfo slot, Stream body, CancellationToken cancellation)
    {
        var name = NameOf(token);
        var partial = PathOf(name) + ".part";
        File.Delete(partial);
        try
        {
            await using (var writer = SealedFile.Create(partial, _keys, name, JsonSerializer.SerializeToUtf8Bytes(slot), slot.Size))
            {
                var buffer = new byte[SealedFile.ChunkSize];
                int read;
                while ((read = await body.ReadAsync(buffer, cancellation)) > 0)
                    await writer.WriteAsync(buffer.AsMemory(0, read), cancellation);
                await writer.CompleteAsync(cancellation);
            }
            File.Move(partial, PathOf(name));
            _files[name] = slot;
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
    }

    /// <summary>Deletes the files older than the retention period; returns how many.</summary>
    public int Sweep(DateTimeOffset now)
    {
        var cutoff = now - TimeSpan.FromDays(_options.UploadRetentionDays);
        var deleted = Delete(info => info.Created < cutoff);
        if (deleted > 0) _log.LogInformation("upload sweep: deleted {Count} files older than {Days} days", deleted, _options.UploadRetentionDays);
        return deleted;
    }

    /// <summary>Deletes every file the account uploaded (its data exports too), when the account is removed; returns how many.</summary>
    public int DeleteOwnedBy(string owner) => Delete(info => info.Owner == owner);

    private int Delete(Func<UploadInfo, bool> which)
    {
        var deleted = 0;
        foreach (var (name, info) in _files)
        {
            if (!which(info)) continue;
            try
            {
                File.Delete(PathOf(name));
                _files.TryRemove(name, out _);
                deleted++;
            }
            catch (IOException e)
            {
                _log.LogWarning("uploads: cannot delete {Name}: {Reason}", name, e.Message);
            }
        }
        return deleted;
    }

    private void LoadIndex()
    {
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory))
        {
            if (path.EndsWith(".part", StringComparison.Ordinal))
            {
                File.Delete(path); // an upload the last run did not finish
                continue;
            }
            if (!path.EndsWith(Extension, StringComparison.Ordinal)) continue;
            var name = Path.GetFileNameWithoutExtension(path);
            try
            {
                using var reader = SealedFile.Open(path, _keys, name);
                if (JsonSerializer.Deserialize<UploadInfo>(reader.Metadata) is { } info) _files[name] = info;
            }
            catch (Exception e) when (e is SealedRecordException or JsonException or IOException)
            {
                _log.LogError("upload {Path} is not served: {Reason}", path, e.Message);
            }
        }
    }

    private static string NameOf(string token) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(token)).AsSpan(0, 20));

    private string PathOf(string name) => Path.Combine(Directory, name + Extension);

    public void Dispose() => _sweep.Dispose();
}
