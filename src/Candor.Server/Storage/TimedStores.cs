using System.Diagnostics;
using Candor.Server.Hosting;

namespace Candor.Server.Storage;

/// <summary>
/// The backend's stores with every operation timed into <see cref="ServerMetrics.StorageOperation"/>
/// (db.client.operation.duration): the database's share of a module's storage call, sealing excluded.
/// </summary>
internal static class TimedStores
{
    public static async Task<T> Time<T>(ServerMetrics metrics, string system, string operation, Task<T> running)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await running;
        }
        finally
        {
            metrics.StorageOperation(system, operation, started);
        }
    }

    public static async Task Time(ServerMetrics metrics, string system, string operation, Task running)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await running;
        }
        finally
        {
            metrics.StorageOperation(system, operation, started);
        }
    }
}

internal sealed class TimedKeyValueStore(IKeyValueStore inner, ServerMetrics metrics, string system) : IKeyValueStore
{
    public Task<string?> GetAsync(string user) => TimedStores.Time(metrics, system, "get", inner.GetAsync(user));
    public Task SetAsync(string user, string? value) => TimedStores.Time(metrics, system, "set", inner.SetAsync(user, value));
    public Task<IReadOnlyList<string>> ListUsersAsync() => TimedStores.Time(metrics, system, "list", inner.ListUsersAsync());
    public Task<IReadOnlyList<string>> AddManyAsync(IReadOnlyList<KeyValuePair<string, string>> values) =>
        TimedStores.Time(metrics, system, "add_many", inner.AddManyAsync(values));
}

internal sealed class TimedMapStore(IMapStore inner, ServerMetrics metrics, string system) : IMapStore
{
    public Task<string?> GetAsync(string user, string key) => TimedStores.Time(metrics, system, "get", inner.GetAsync(user, key));
    public Task SetAsync(string user, string key, string? value) => TimedStores.Time(metrics, system, "set", inner.SetAsync(user, key, value));
    public Task<IReadOnlyDictionary<string, string>> GetAllAsync(string user) => TimedStores.Time(metrics, system, "get_all", inner.GetAllAsync(user));
}

internal sealed class TimedArchiveStore(IArchiveStore inner, ServerMetrics metrics, string system) : IArchiveStore
{
    public Task<long> AppendAsync(string user, DateTimeOffset when, string with, string value) =>
        TimedStores.Time(metrics, system, "append", inner.AppendAsync(user, when, with, value));
    public Task<IReadOnlyList<ArchiveItem>> QueryAsync(string user, ArchiveQuery query) => TimedStores.Time(metrics, system, "query", inner.QueryAsync(user, query));
    public Task<IReadOnlyList<ArchiveItem>> TakeAsync(string user, ArchiveQuery query) => TimedStores.Time(metrics, system, "take", inner.TakeAsync(user, query));
    public Task<int> CountAsync(string user) => TimedStores.Time(metrics, system, "count", inner.CountAsync(user));
    public Task AppendBatchAsync(IReadOnlyList<ArchiveEntry> entries) => TimedStores.Time(metrics, system, "append_batch", inner.AppendBatchAsync(entries));
    public Task<int> CountAsync(string user, ArchiveQuery query) => TimedStores.Time(metrics, system, "count", inner.CountAsync(user, query));
    public Task<int> DeleteAsync(string user) => TimedStores.Time(metrics, system, "delete", inner.DeleteAsync(user));
    public Task<int> DeleteOlderThanAsync(DateTimeOffset before) => TimedStores.Time(metrics, system, "delete_older", inner.DeleteOlderThanAsync(before));
}
