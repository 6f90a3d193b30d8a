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
}

/// <summary>An item to append with <see cref="IArchiveStore.AppendBatchAsync"/>: any account, with the caller's unique id.</summary>
public sealed record ArchiveEntry(string User, string Key, DateTimeOffset When, string With, string Value)
{
    /// <summary>The correspondent's full JID when the message was exchanged with one resource (XEP-0313 full-JID 'with').</summary>
    public string? WithFull { get; init; }
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
