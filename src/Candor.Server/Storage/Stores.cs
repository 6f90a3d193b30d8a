using System.Text;
namespace Candor.Server.Storage;

/// <summary>
/// The generic store shapes every feature module uses (Prosody's keyval, map and archive). A backend
/// implements them once; modules open them by name and never see SQL.
/// </summary>
public interface IStorage : IAsyncDisposable
{
    IKeyValueStore OpenKeyValue(string name);
    IMapStore OpenMap(string name);
    IArchiveStore OpenArchive(string name);

    /// <summary>Removes everything stored for an account, in every store.</summary>
    Task DeleteUserAsync(string user);
}

/// <summary>One value per account.</summary>
public interface IKeyValueStore
{
    Task<string?> GetAsync(string user);
    /// <summary>Stores the value, or removes it when null.</summary>
    Task SetAsync(string user, string? value);
    Task<IReadOnlyList<string>> ListUsersAsync();
    /// <summary>Stores each value whose account has none yet, all in one transaction; returns the accounts it stored.</summary>
    Task<IReadOnlyList<string>> AddManyAsync(IReadOnlyList<KeyValuePair<string, string>> values);
}

/// <summary>Many keyed values per account.</summary>
public interface IMapStore
{
    Task<string?> GetAsync(string user, string key);
    /// <summary>Stores the value, or removes it when null.</summary>
    Task SetAsync(string user, string key, string? value);
    Task<IReadOnlyDictionary<string, string>> GetAllAsync(string user);
}

public sealed record ArchiveItem(long Id, DateTimeOffset When, string With, string Value)
{
    /// <summary>The caller's unique id for the item (a XEP-0359 stanza-id), or null when appended without one.</summary>
    public string? Key { get; init; }
    /// <summary>
    /// Set by a backend for an item appended with an <see cref="ArchiveBody"/>: <see cref="Value"/> is then the shared
    /// body's stored value, and this the body's key and the item's own stored value (what the layer above put there).
    /// The sealing layer opens the body and returns such an item with an empty <see cref="With"/>: the correspondent
    /// is in the stanza, and is stored apart from it only as a hash.
    /// </summary>
    public (string BodyKey, string Own)? Shared { get; init; }
}

/// <summary>
/// Content shared by several entries appended together in one <see cref="Modules.Archive.ArchiveWriter"/> call (one message archived
/// for its sender and its recipient): stored once, with a count of the entries that refer to it, and removed with the
/// last of them. <see cref="Key"/> is unique (a version 7 UUID).
/// </summary>
public sealed class ArchiveBody
{
    private string? _value;

    public ArchiveBody(string key, string value, int refs) => (Key, _value, Refs) = (key, value, refs);

    /// <summary>A body whose content is given in UTF-8, as serialized: the sealing layer seals it without a copy as text.</summary>
    public ArchiveBody(string key, byte[] content, int refs) => (Key, Content, Refs) = (key, content, refs);

    public string Key { get; }
    /// <summary>The stored form: the sealing layer replaces the content with its sealed form, once.</summary>
    public string Value
    {
        get => _value ??= Sealed is { } record ? Convert.ToBase64String(record) : Encoding.UTF8.GetString(Content!);
        internal set
        {
            _value = value;
            Content = null;
            Sealed = null;
        }
    }
    /// <summary>The content in UTF-8 when it was given so and is not sealed yet.</summary>
    internal byte[]? Content { get; private set; }
    /// <summary>
    /// The sealed record itself when the sealing layer sealed <see cref="Content"/> (<see cref="Value"/> is then its
    /// base64 text, made only for a backend that asks for it): the SQLite archive stores these bytes as they are.
    /// </summary>
    internal byte[]? Sealed { get; private set; }

    internal void SetSealed(byte[] record)
    {
        Sealed = record;
        Content = null;
        _value = null;
    }
    /// <summary>How many entries refer to it.</summary>
    public int Refs { get; }
    /// <summary>Set by the sealing layer once <see cref="Value"/> is sealed.</summary>
    internal bool Prepared { get; set; }
    /// <summary>The backend's row, once stored (the entries sharing it may be written in consecutive transactions).</summary>
    internal long Row { get; set; }
}

/// <summary>An item to append with <see cref="IArchiveStore.AppendBatchAsync"/>: any account, with the caller's unique id.</summary>
public sealed record ArchiveEntry(string User, string Key, DateTimeOffset When, string With, string Value)
{
    /// <summary>The correspondent's full JID when the message was exchanged with one resource (XEP-0313 full-JID 'with').</summary>
    public string? WithFull { get; init; }
    /// <summary>
    /// Content stored once for all entries that share it; <see cref="Value"/> is then the entry's own part (the sealing
    /// layer binds it to the body). Entries sharing one body are appended with one <see cref="IArchiveStore.AppendBatchAsync"/>
    /// or, in a longer batch, in order.
    /// </summary>
    public ArchiveBody? Body { get; init; }
}

/// <summary>An ordered log per account, queried by time, correspondent and id.</summary>
public interface IArchiveStore
{
    Task<long> AppendAsync(string user, DateTimeOffset when, string with, string value);
    Task<IReadOnlyList<ArchiveItem>> QueryAsync(string user, ArchiveQuery query);
    /// <summary>Removes the matching items and returns them, atomically: two callers never both get one item.</summary>
    Task<IReadOnlyList<ArchiveItem>> TakeAsync(string user, ArchiveQuery query);
    Task<int> CountAsync(string user);

    /// <summary>Appends the entries (of any accounts) in one transaction, in order: all or none are stored.</summary>
    Task AppendBatchAsync(IReadOnlyList<ArchiveEntry> entries);
    /// <summary>How many items match the query's filters (its <see cref="ArchiveQuery.Limit"/> and order ignored).</summary>
    Task<int> CountAsync(string user, ArchiveQuery query);
    /// <summary>Removes all of the account's items in this store; returns how many.</summary>
    Task<int> DeleteAsync(string user);
    /// <summary>Removes every account's items stored before <paramref name="before"/>; returns how many.</summary>
    Task<int> DeleteOlderThanAsync(DateTimeOffset before);
}

/// <summary>
/// An archive store whose entries are made ready to store (sealed) by the thread that queues them, in parallel, so
/// that the one thread writing batches only stores them (<see cref="Modules.Archive.ArchiveWriter"/>).
/// </summary>
public interface IPreparingArchiveStore : IArchiveStore
{
    /// <summary>The entry as <see cref="AppendPreparedAsync"/> stores it.</summary>
    ArchiveEntry Prepare(ArchiveEntry entry);
    /// <summary><see cref="IArchiveStore.AppendBatchAsync"/> of entries made by <see cref="Prepare"/>.</summary>
    Task AppendPreparedAsync(IReadOnlyList<ArchiveEntry> entries);
}

public sealed record ArchiveQuery
{
    public DateTimeOffset? Start { get; init; }
    public DateTimeOffset? End { get; init; }
    public string? With { get; init; }
    /// <summary>Only the items exchanged with this exact full JID (<see cref="ArchiveEntry.WithFull"/>).</summary>
    public string? WithFull { get; init; }
    public long? AfterId { get; init; }
    public long? BeforeId { get; init; }
    public int? Limit { get; init; }
    /// <summary>Only the items with these keys.</summary>
    public IReadOnlyCollection<string>? Keys { get; init; }
    /// <summary>Newest first, so that a limit takes the latest items.</summary>
    public bool Newest { get; init; }

    public static ArchiveQuery All { get; } = new();
}
