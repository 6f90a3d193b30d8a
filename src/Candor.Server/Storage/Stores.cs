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
}

/// <summary>Many keyed values per account.</summary>
public interface IMapStore
{
    Task<string?> GetAsync(string user, string key);
    /// <summary>Stores the value, or removes it when null.</summary>
    Task SetAsync(string user, string key, string? value);
    Task<IReadOnlyDictionary<string, string>> GetAllAsync(string user);
}

public sealed record ArchiveItem(long Id, DateTimeOffset When, string With, string Value);

/// <summary>An ordered log per account, queried by time, correspondent and id.</summary>
public interface IArchiveStore
{
    Task<long> AppendAsync(string user, DateTimeOffset when, string with, string value);
    Task<IReadOnlyList<ArchiveItem>> QueryAsync(string user, ArchiveQuery query);
    /// <summary>Removes the matching items and returns them, atomically: two callers never both get one item.</summary>
    Task<IReadOnlyList<ArchiveItem>> TakeAsync(string user, ArchiveQuery query);
    Task<int> CountAsync(string user);
}

public sealed record ArchiveQuery
{
    public DateTimeOffset? Start { get; init; }
    public DateTimeOffset? End { get; init; }
    public string? With { get; init; }
    public long? AfterId { get; init; }
    public long? BeforeId { get; init; }
    public int? Limit { get; init; }

    public static ArchiveQuery All { get; } = new();
}
