using System.Security.Cryptography;
using Candor.Server.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Candor.Server.Storage;

/// <summary>
/// Promise 4, sealed at rest, done once below every store: wraps a backend so that each value is sealed with
/// AES-256-GCM under the master key (<see cref="Sealer"/>) and each account name, map key and archive 'with' is
/// stored as a keyed hash. Modules open stores as before and never see a key or a cipher. Only the archive's
/// time and id, store names and the number and size of records stay readable (docs/SECURITY.md).
/// A record that does not open is reported in the log and never served: a single read throws
/// <see cref="SealedRecordException"/>, a list leaves it out.
/// </summary>
public sealed class SealedStorage : IStorage
{
    // The index key (for the keyed hashes) is random and stored here, sealed like any record: a rotation re-seals
    // it and the hashes stay valid. Its presence is what says "this database is sealed".
    internal const string KeyStore = "candor-keys";
    internal const string IndexKeyRecord = "index";

    private readonly IStorage _inner;
    private readonly IRawRecords _raw;
    private readonly Sealer _sealer;

    private SealedStorage(IStorage inner, IRawRecords raw, Sealer sealer, KeyFiles files, long migrated)
    {
        _inner = inner;
        _raw = raw;
        _sealer = sealer;
        Files = files;
        Migrated = migrated;
    }

    public KeyRing Keys => _sealer.Keys;
    public KeyFiles Files { get; }
    /// <summary>Plaintext records of an earlier version sealed when this storage was opened.</summary>
    public long Migrated { get; }
    public ILogger Log { get; set; } = NullLogger.Instance;

    /// <summary>
    /// The configured backend (the PostgreSQL database of <see cref="ServerOptions.Postgres"/>, else the SQLite
    /// database in the data directory), sealed with the configured master key.
    /// </summary>
    public static Task<SealedStorage> OpenAsync(ServerOptions options) => options.Postgres is { } postgres
        ? OpenOwnedAsync(PostgresStorage.OpenAsync(postgres), options)
        : OpenOwnedAsync(Task.FromResult(new SqliteStorage(Path.Combine(options.DataDirectory, SqliteStorage.FileName))), options);

    private static async Task<SealedStorage> OpenOwnedAsync<TBackend>(Task<TBackend> opening, ServerOptions options) where TBackend : IStorage, IRawRecords
    {
        var backend = await opening;
        try
        {
            return await OpenAsync(backend, backend, new KeyFiles(options));
        }
        catch
        {
            await backend.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Opens <paramref name="inner"/> with the keys <paramref name="files"/> holds, refusing a database they do not
    /// open (<see cref="KeyException"/>); a database not sealed yet (new, or from an earlier version) is sealed now,
    /// in one transaction, with a key made for it when there is none.
    /// </summary>
    public static async Task<SealedStorage> OpenAsync<TBackend>(TBackend inner, IRawRecords raw, KeyFiles files) where TBackend : IStorage
    {
        var keys = files.Load();
        var marker = await inner.OpenKeyValue(KeyStore).GetAsync(IndexKeyRecord);
        if (marker is not null)
        {
            var sealedWith = Sealer.KeyIdOf(marker)?.ToString("x8") ?? "?";
            if (keys is null)
                throw new KeyException($"no master key: {files.Describe} is missing and the database is sealed with key {sealedWith}; restore the key file from its backup (or set CANDOR__MASTERKEY)");
            try
            {
                var (_, index) = new Sealer(keys, []).Open(RecordShape.KeyValue, KeyStore, IndexKeyRecord, "", marker, withName: false);
                return new SealedStorage(inner, raw, new Sealer(keys, Convert.FromBase64String(index)), files, 0);
            }
            catch (SealedRecordException)
            {
                throw new KeyException($"wrong master key: {files.Describe} holds key {keys.Current.IdText}, the database is sealed with key {sealedWith}; restore the right key file");
            }
        }
        keys ??= files.Create();
        var indexKey = RandomNumberGenerator.GetBytes(32);
        var sealer = new Sealer(keys, indexKey);
        var markerRecord = new RawRecord(RecordShape.KeyValue, 0, KeyStore, IndexKeyRecord, "",
            sealer.Seal(RecordShape.KeyValue, KeyStore, IndexKeyRecord, "", IndexKeyRecord, Convert.ToBase64String(indexKey)));
        var migrated = await raw.RewriteAsync(record => SealPlaintext(sealer, record), insert: markerRecord);
        // The plaintext the records replaced may linger in free pages and the WAL: rebuild the files without it.
        if (migrated > 0) await raw.CompactAsync();
        return new SealedStorage(inner, raw, sealer, files, migrated);
    }

    private static RawRecord SealPlaintext(Sealer sealer, RawRecord record)
    {
        if (record.Shape == RecordShape.ArchiveBody)
            return record with { Value = sealer.Seal(record.Shape, record.Store, "", record.Name, "", record.Value) };
        var user = sealer.Hash(record.User);
        var (column, name) = record.Shape == RecordShape.KeyValue ? ("", record.User) : (sealer.Hash(user, record.Name), record.Name);
        return record with { User = user, Name = column, Value = sealer.Seal(record.Shape, record.Store, user, column, name, record.Value) };
    }

    /// <summary>Set by the host before the modules open their stores: every backend operation is then timed.</summary>
    public Hosting.ServerMetrics? Metrics { get; set; }
    private string System => _inner is PostgresStorage ? "postgresql" : "sqlite";

    public IKeyValueStore OpenKeyValue(string name) =>
        new SealedKeyValueStore(this, Metrics is { } m ? new TimedKeyValueStore(_inner.OpenKeyValue(name), m, System) : _inner.OpenKeyValue(name), name);
    public IMapStore OpenMap(string name) =>
        new SealedMapStore(this, Metrics is { } m ? new TimedMapStore(_inner.OpenMap(name), m, System) : _inner.OpenMap(name), name);
    public IArchiveStore OpenArchive(string name) =>
        new SealedArchiveStore(this, Metrics is { } m ? new TimedArchiveStore(_inner.OpenArchive(name), m, System) : _inner.OpenArchive(name), name);

    /// <summary>Items in each archive-shaped store, all accounts together (the metrics' gauge).</summary>
    public Task<IReadOnlyDictionary<string, long>> CountArchiveItemsAsync() => _raw.CountArchiveItemsAsync();

    public Task DeleteUserAsync(string user) => _inner.DeleteUserAsync(Hash(user));

    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    internal string Hash(string user) => _sealer.Hash(user);
    internal string Hash(string hashedUser, string name) => _sealer.Hash(hashedUser, name);

    /// <summary>The record's value sealed with the current key; null when it already is.</summary>
    internal string? Reseal(RawRecord record) => _sealer.Reseal(record);

    internal string Seal(RecordShape shape, string store, string user, string column, string name, string value) =>
        _sealer.Seal(shape, store, user, column, name, value);

    internal byte[] SealRecord(RecordShape shape, string store, string user, string column, string name, ReadOnlySpan<byte> value) =>
        _sealer.SealRecord(shape, store, user, column, name, value);

    internal string Bind(string hashedUser, string column, string bodyKey) => _sealer.Bind(hashedUser, column, bodyKey);

    /// <summary>
    /// Opens an archive item's shared body for a list after checking the item's binding to it: reported and left out
    /// (null) when either fails.
    /// </summary>
    internal string? TryOpenShared(string store, string hashedUser, string column, string bodyKey, string binding, string body)
    {
        if (binding != _sealer.Bind(hashedUser, column, bodyKey))
        {
            Log.LogError("{Report}", Sealer.Failure(RecordShape.Archive, store, "it is bound to another account, correspondent or body (moved there) or altered").Message);
            return null;
        }
        return TryOpen(RecordShape.ArchiveBody, store, "", bodyKey, body, withName: false)?.Value;
    }

    /// <summary>Opens a record for a single read: reported and thrown when it does not open.</summary>
    internal (string? Name, string Value) Open(RecordShape shape, string store, string user, string column, string value, bool withName)
    {
        try
        {
            return _sealer.Open(shape, store, user, column, value, withName);
        }
        catch (SealedRecordException e)
        {
            Log.LogError("{Report}", e.Message);
            throw;
        }
    }

    /// <summary>Opens a record for a list: reported and left out (null) when it does not open.</summary>
    internal (string? Name, string Value)? TryOpen(RecordShape shape, string store, string user, string column, string value, bool withName)
    {
        try
        {
            return _sealer.Open(shape, store, user, column, value, withName);
        }
        catch (SealedRecordException e)
        {
            Log.LogError("{Report}", e.Message);
            return null;
        }
    }

    /// <summary>Re-seals every record not sealed with the current key; returns how many it re-sealed.</summary>
    public Task<long> ResealAsync() => _raw.RewriteAsync(record =>
    {
        try
        {
            return _sealer.Reseal(record) is { } value ? record with { Value = value } : null;
        }
        catch (SealedRecordException e)
        {
            // Left as it is: it did not open before the rotation either, and is reported, not lost silently.
            Log.LogError("{Report}", e.Message);
            return null;
        }
    }, insert: null);

    /// <summary>How many records each key seals (0 for records that are not sealed at all).</summary>
    public async Task<IReadOnlyDictionary<uint, long>> CountByKeyAsync()
    {
        var counts = new Dictionary<uint, long>();
        await _raw.ScanAsync(record =>
        {
            var id = Sealer.KeyIdOf(record.Value) ?? 0;
            counts[id] = counts.GetValueOrDefault(id) + 1;
        });
        return counts;
    }

    /// <summary>
    /// <c>candor key rotate</c>: seals everything with a new master key and keeps no other. With
    /// <paramref name="serverRunning"/> it first waits until the running server seals with the new key too.
    /// Safe to interrupt at any point and run again (see <see cref="KeyFiles"/>).
    /// </summary>
    public async Task<(MasterKey Old, MasterKey New, long Resealed)> RotateAsync(bool serverRunning, Action<string> progress)
    {
        var old = Keys.Current;
        var next = Files.BeginRotation(Keys);
        progress($"new key {next.IdText} written to {Files.NextPath}");
        if (serverRunning)
        {
            await Files.WaitInUseAsync(next, TimeSpan.FromSeconds(30));
            // A write the server sealed with the old key just before switching may still be on its way to the database.
            await Task.Delay(KeyWatch.Interval);
            progress("the running server seals with the new key");
        }
        long total = 0;
        for (long resealed; (resealed = await ResealAsync()) > 0;) total += resealed;
        await _raw.FlushAsync();
        total += await SealedFile.ResealFolderAsync(Files.UploadsPath, Keys);
        Files.FinishRotation(Keys);
        return (old, next, total);
    }
}

/// <summary>A running server's watch on the key files, for rotations made beside it.</summary>
public static class KeyWatch
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    public static async Task RunAsync(SealedStorage storage, ILogger log, CancellationToken stopping)
    {
        storage.Files.MarkInUse(storage.Keys.Current);
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    if (storage.Files.Refresh(storage.Keys) is { } change) log.LogWarning("{Change}", change);
                }
                catch (Exception e) when (e is KeyException or IOException or UnauthorizedAccessException)
                {
                    log.LogError("reading the master key files failed: {Reason}", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}

internal sealed class SealedKeyValueStore(SealedStorage sealing, IKeyValueStore inner, string name) : IKeyValueStore
{
    public async Task<string?> GetAsync(string user)
    {
        var hashed = sealing.Hash(user);
        var value = await inner.GetAsync(hashed);
        return value is null ? null : sealing.Open(RecordShape.KeyValue, name, hashed, "", value, withName: false).Value;
    }

    public Task SetAsync(string user, string? value)
    {
        var hashed = sealing.Hash(user);
        return inner.SetAsync(hashed, value is null ? null : sealing.Seal(RecordShape.KeyValue, name, hashed, "", user, value));
    }

    /// <summary>The names are inside the sealed records: each is opened.</summary>
    public async Task<IReadOnlyList<string>> ListUsersAsync()
    {
        var users = new List<string>();
        foreach (var hashed in await inner.ListUsersAsync())
            if (await inner.GetAsync(hashed) is { } value && sealing.TryOpen(RecordShape.KeyValue, name, hashed, "", value, withName: true) is { } opened)
                users.Add(opened.Name!);
        users.Sort(StringComparer.Ordinal);
        return users;
    }

    public async Task<IReadOnlyList<string>> AddManyAsync(IReadOnlyList<KeyValuePair<string, string>> values)
    {
        var byHash = new Dictionary<string, string>(values.Count);
        var sealedValues = new List<KeyValuePair<string, string>>(values.Count);
        foreach (var (user, value) in values)
        {
            var hashed = sealing.Hash(user);
            byHash[hashed] = user;
            sealedValues.Add(new(hashed, sealing.Seal(RecordShape.KeyValue, name, hashed, "", user, value)));
        }
        var added = await inner.AddManyAsync(sealedValues);
        return added.Select(hashed => byHash[hashed]).ToList();
    }
}

internal sealed class SealedMapStore(SealedStorage sealing, IMapStore inner, string name) : IMapStore
{
    public async Task<string?> GetAsync(string user, string key)
    {
        var hashedUser = sealing.Hash(user);
        var hashedKey = sealing.Hash(hashedUser, key);
        var value = await inner.GetAsync(hashedUser, hashedKey);
        return value is null ? null : sealing.Open(RecordShape.Map, name, hashedUser, hashedKey, value, withName: false).Value;
    }

    public Task SetAsync(string user, string key, string? value)
    {
        var hashedUser = sealing.Hash(user);
        var hashedKey = sealing.Hash(hashedUser, key);
        return inner.SetAsync(hashedUser, hashedKey, value is null ? null : sealing.Seal(RecordShape.Map, name, hashedUser, hashedKey, key, value));
    }

    public async Task<IReadOnlyDictionary<string, string>> GetAllAsync(string user)
    {
        var hashedUser = sealing.Hash(user);
        var items = new Dictionary<string, string>();
        foreach (var (hashedKey, value) in await inner.GetAllAsync(hashedUser))
            if (sealing.TryOpen(RecordShape.Map, name, hashedUser, hashedKey, value, withName: true) is { } opened)
                items[opened.Name!] = opened.Value;
        return items;
    }
}

internal sealed class SealedArchiveStore(SealedStorage sealing, IArchiveStore inner, string name) : IPreparingArchiveStore
{
    public Task<long> AppendAsync(string user, DateTimeOffset when, string with, string value)
    {
        var hashedUser = sealing.Hash(user);
        var hashedWith = sealing.Hash(hashedUser, with);
        return inner.AppendAsync(hashedUser, when, hashedWith, sealing.Seal(RecordShape.Archive, name, hashedUser, hashedWith, with, value));
    }

    public async Task<IReadOnlyList<ArchiveItem>> QueryAsync(string user, ArchiveQuery query)
    {
        var hashedUser = sealing.Hash(user);
        return Open(hashedUser, await inner.QueryAsync(hashedUser, Hashed(hashedUser, query)));
    }

    public async Task<IReadOnlyList<ArchiveItem>> TakeAsync(string user, ArchiveQuery query)
    {
        var hashedUser = sealing.Hash(user);
        return Open(hashedUser, await inner.TakeAsync(hashedUser, Hashed(hashedUser, query)));
    }

    public Task<int> CountAsync(string user) => inner.CountAsync(sealing.Hash(user));

    public Task AppendBatchAsync(IReadOnlyList<ArchiveEntry> entries)
    {
        var sealedEntries = new ArchiveEntry[entries.Count];
        for (var i = 0; i < entries.Count; i++) sealedEntries[i] = Prepare(entries[i]);
        return inner.AppendBatchAsync(sealedEntries);
    }

    /// <summary>
    /// The entry sealed, its account and 'with' hashed; its id and time stay plain. An entry with a shared body is
    /// bound to it instead, and the body (no account, bound to this store and its own key) is sealed with the first
    /// of the entries that share it: those are prepared by one thread, one after the other.
    /// </summary>
    public ArchiveEntry Prepare(ArchiveEntry entry)
    {
        var hashedUser = sealing.Hash(entry.User);
        var hashedWith = sealing.Hash(hashedUser, entry.With);
        var withFull = entry.WithFull is { } full ? sealing.Hash(hashedUser, full) : null;
        if (entry.Body is { } body)
        {
            if (!body.Prepared)
            {
                if (body.Content is { } content) body.SetSealed(sealing.SealRecord(RecordShape.ArchiveBody, name, "", body.Key, "", content));
                else body.Value = sealing.Seal(RecordShape.ArchiveBody, name, "", body.Key, "", body.Value);
                body.Prepared = true;
            }
            return new ArchiveEntry(hashedUser, entry.Key, entry.When, hashedWith, sealing.Bind(hashedUser, hashedWith, body.Key)) { WithFull = withFull, Body = body };
        }
        return new ArchiveEntry(hashedUser, entry.Key, entry.When, hashedWith, sealing.Seal(RecordShape.Archive, name, hashedUser, hashedWith, entry.With, entry.Value))
        {
            WithFull = withFull,
        };
    }

    /// <summary>
    /// Entries sealed when they were queued: one sealed under a key that a rotation replaced since is sealed again
    /// with the current key, so that the rotation's re-sealing, which may have passed already, never misses it.
    /// </summary>
    public Task AppendPreparedAsync(IReadOnlyList<ArchiveEntry> entries)
    {
        ArchiveEntry[]? resealed = null;
        var current = sealing.Keys.Current.Id;
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            if (entry.Body is { } body)
            {
                // The binding is under the index key, which rotations keep; the body is sealed under the master key.
                if (body.Row == 0 && (body.Sealed is { } record ? Sealer.KeyIdOf(record) : Sealer.KeyIdOf(body.Value)) != current
                    && sealing.Reseal(new RawRecord(RecordShape.ArchiveBody, 0, name, "", body.Key, body.Value)) is { } sealedBody)
                    body.Value = sealedBody;
                continue;
            }
            if (Sealer.KeyIdOf(entry.Value) != current
                && sealing.Reseal(new RawRecord(RecordShape.Archive, 0, name, entry.User, entry.With, entry.Value)) is { } value)
                (resealed ??= [.. entries])[i] = entry with { Value = value };
        }
        return inner.AppendBatchAsync(resealed ?? entries);
    }

    public Task<int> CountAsync(string user, ArchiveQuery query)
    {
        var hashedUser = sealing.Hash(user);
        return inner.CountAsync(hashedUser, Hashed(hashedUser, query));
    }

    public Task<int> DeleteAsync(string user) => inner.DeleteAsync(sealing.Hash(user));

    public Task<int> DeleteOlderThanAsync(DateTimeOffset before) => inner.DeleteOlderThanAsync(before);

    private ArchiveQuery Hashed(string hashedUser, ArchiveQuery query) => query with
    {
        With = query.With is { } with ? sealing.Hash(hashedUser, with) : null,
        WithFull = query.WithFull is { } full ? sealing.Hash(hashedUser, full) : null,
    };

    private List<ArchiveItem> Open(string hashedUser, IReadOnlyList<ArchiveItem> items)
    {
        var opened = new List<ArchiveItem>(items.Count);
        foreach (var item in items)
        {
            if (item.Shared is { } shared)
            {
                // The correspondent is not stored apart from the stanza for these: the item's 'with' is left empty.
                if (sealing.TryOpenShared(name, hashedUser, item.With, shared.BodyKey, shared.Own, item.Value) is { } value)
                    opened.Add(item with { With = "", Value = value, Shared = null });
            }
            else if (sealing.TryOpen(RecordShape.Archive, name, hashedUser, item.With, item.Value, withName: true) is { } record)
                opened.Add(item with { With = record.Name!, Value = record.Value });
        }
        return opened;
    }
}
