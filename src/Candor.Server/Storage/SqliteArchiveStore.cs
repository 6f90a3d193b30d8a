using System.Buffers;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using static Candor.Server.Storage.SqliteArchiveChunk;

namespace Candor.Server.Storage;

/// <summary>
/// An archive store in the SQLite archive table: a row per item for single appends (and rows written before
/// packing), and a packed row per account and batch for <see cref="AppendBatchAsync"/> (<see cref="SqliteArchiveChunk"/>).
/// Queries walk the account's rows in id order with the filters a row can be judged by in SQL, and judge each
/// item exactly as they go.
/// </summary>
internal sealed class SqliteArchiveStore(SqliteStorage storage, string name) : IArchiveStore
{
    private const int MaxKeptRow = 1 << 20;
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_row;

    public Task<long> AppendAsync(string user, DateTimeOffset when, string with, string value)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO archive (store, user, at, with_jid, value) VALUES ($store, $user, $at, $with, $value) RETURNING id";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        command.Parameters.AddWithValue("$at", when.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$with", with);
        command.Parameters.AddWithValue("$value", value);
        return Task.FromResult(ItemId(Convert.ToInt64(command.ExecuteScalar()), 0));
    }

    public Task<IReadOnlyList<ArchiveItem>> QueryAsync(string user, ArchiveQuery query) =>
        Task.FromResult(Run(user, query, take: false));

    public Task<IReadOnlyList<ArchiveItem>> TakeAsync(string user, ArchiveQuery query) =>
        Task.FromResult(Run(user, query, take: true));

    public Task<int> CountAsync(string user) => CountAsync(user, ArchiveQuery.All);

    public Task<int> CountAsync(string user, ArchiveQuery query)
    {
        using var connection = storage.Open();
        if (query.Start is null && query.End is null && query.With is null && query.WithFull is null && query.AfterId is null && query.BeforeId is null && query.Keys is null)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT COALESCE(SUM(COALESCE(n, 1)), 0) FROM archive WHERE store = $store AND user = $user";
            command.Parameters.AddWithValue("$store", name);
            command.Parameters.AddWithValue("$user", user);
            return Task.FromResult(Convert.ToInt32(command.ExecuteScalar()));
        }
        var count = 0;
        Scan(connection, null, user, query with { Limit = null, Newest = false }, (_, _, _) => ++count > 0);
        return Task.FromResult(count);
    }

    /// <summary>
    /// One packed row per account (<see cref="SqliteArchiveChunk"/>), prepared once and stepped with its values bound
    /// by position, all in one transaction.
    /// </summary>
    public Task AppendBatchAsync(IReadOnlyList<ArchiveEntry> entries)
    {
        if (entries.Count == 0) return Task.CompletedTask;
        var byUser = new Dictionary<string, List<ArchiveEntry>>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!byUser.TryGetValue(entry.User, out var own)) byUser[entry.User] = own = [];
            own.Add(entry);
        }
        using var connection = storage.Open();
        var db = connection.Handle!;
        // The WAL is copied into the database every 10,000 pages (40 MB) rather than 1,000: the pages a run of batches
        // rewrites (the ends of the table and of each account's part of its index) are then copied once for many batches.
        // Durability is the WAL's either way.
        Check(db, raw.sqlite3_exec(db, "PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 10000"), raw.SQLITE_OK);
        using var transaction = connection.BeginTransaction();
        Check(db, raw.sqlite3_prepare_v2(db, "INSERT INTO archive (store, user, at, last_at, n, with_jid, value, items) VALUES (?1, ?2, ?3, ?4, ?5, '', '', ?6)", out var insert), raw.SQLITE_OK);
        using (insert)
        {
            raw.sqlite3_bind_text(insert, 1, name);
            // Encoded straight from the entries into one buffer per writing thread: the writer is the archive's one
            // serial step, and a row's items, copies and growing buffers made garbage of several KB per entry.
            var row = t_row ??= new ArrayBufferWriter<byte>(64 * 1024);
            foreach (var (user, own) in byUser)
            {
                for (var start = 0; start < own.Count; start += MaxItems)
                {
                    Begin(row, own[start].When.ToUnixTimeMilliseconds());
                    var (first, last) = (long.MaxValue, long.MinValue);
                    var end = Math.Min(own.Count, start + MaxItems);
                    for (var i = start; i < end; i++)
                    {
                        var entry = own[i];
                        var at = entry.When.ToUnixTimeMilliseconds();
                        (first, last) = (Math.Min(first, at), Math.Max(last, at));
                        var body = entry.Body;
                        Add(row, i - start, at, entry.Key, entry.With, entry.WithFull, entry.Value, body?.Key, body?.Sealed is null ? body?.Value : null, body?.Sealed);
                    }
                    raw.sqlite3_bind_text(insert, 2, user);
                    raw.sqlite3_bind_int64(insert, 3, first);
                    raw.sqlite3_bind_int64(insert, 4, last);
                    raw.sqlite3_bind_int(insert, 5, end - start);
                    raw.sqlite3_bind_blob(insert, 6, row.WrittenSpan);
                    Check(db, raw.sqlite3_step(insert), raw.SQLITE_DONE);
                    raw.sqlite3_reset(insert);
                }
            }
            if (row.Capacity > MaxKeptRow) t_row = null;
        }
        transaction.Commit();
        return Task.CompletedTask;
    }

    private static void Check(sqlite3 db, int result, int expected)
    {
        if (result != expected) SqliteException.ThrowExceptionForRC(result, db);
    }

    public Task<int> DeleteAsync(string user) => Task.FromResult(Delete("a.store = $store AND a.user = $user", command =>
    {
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
    }));

    /// <summary>Whole rows older than <paramref name="before"/> go at once; a packed row that spans it keeps its newer items.</summary>
    public Task<int> DeleteOlderThanAsync(DateTimeOffset before)
    {
        var ms = before.ToUnixTimeMilliseconds();
        using var connection = storage.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var deleted = DeleteItems(connection, transaction, "a.store = $store AND COALESCE(a.last_at, a.at) < $before", command =>
        {
            command.Parameters.AddWithValue("$store", name);
            command.Parameters.AddWithValue("$before", ms);
        });
        var spanning = new List<(long Row, List<Item> Items)>();
        using (var select = connection.CreateCommand())
        {
            select.Transaction = transaction;
            select.CommandText = "SELECT id, items FROM archive WHERE store = $store AND items IS NOT NULL AND at < $before";
            select.Parameters.AddWithValue("$store", name);
            select.Parameters.AddWithValue("$before", ms);
            using var reader = select.ExecuteReader();
            while (reader.Read()) spanning.Add((reader.GetInt64(0), Decode((byte[])reader.GetValue(1))));
        }
        foreach (var (row, items) in spanning)
        {
            var kept = items.FindAll(item => item.At >= ms);
            deleted += items.Count - kept.Count;
            Repack(connection, transaction, row, kept);
        }
        transaction.Commit();
        return Task.FromResult(deleted);
    }

    private int Delete(string where, Action<SqliteCommand> bind)
    {
        using var connection = storage.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var deleted = DeleteItems(connection, transaction, where, bind);
        transaction.Commit();
        return deleted;
    }

    /// <summary>
    /// Deletes the rows matching <paramref name="where"/> (of <c>archive AS a</c>) and every shared body that no item
    /// refers to any more; returns how many items they held.
    /// </summary>
    internal static int DeleteItems(SqliteConnection connection, SqliteTransaction transaction, string where, Action<SqliteCommand> bind)
    {
        using var delete = connection.CreateCommand();
        delete.Transaction = transaction;
        delete.CommandText = $"DELETE FROM archive AS a WHERE {where} RETURNING body, n";
        bind(delete);
        var deleted = 0;
        Dictionary<long, int>? released = null;
        using (var reader = delete.ExecuteReader())
        {
            while (reader.Read())
            {
                deleted += reader.IsDBNull(1) ? 1 : reader.GetInt32(1);
                if (reader.IsDBNull(0)) continue;
                released ??= [];
                var body = reader.GetInt64(0);
                released[body] = released.GetValueOrDefault(body) + 1;
            }
        }
        if (released is null) return deleted;
        using var release = connection.CreateCommand();
        release.Transaction = transaction;
        release.CommandText = "UPDATE archive_body SET refs = refs - $count WHERE id = $id; DELETE FROM archive_body WHERE id = $id AND refs <= 0";
        var id = release.Parameters.Add("$id", SqliteType.Integer);
        var count = release.Parameters.Add("$count", SqliteType.Integer);
        foreach (var (body, items) in released)
        {
            id.Value = body;
            count.Value = items;
            release.ExecuteNonQuery();
        }
        return deleted;
    }

    /// <summary>Stores what is left of a packed row, or deletes the row when nothing is.</summary>
    private static void Repack(SqliteConnection connection, SqliteTransaction transaction, long row, List<Item> items)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.Parameters.AddWithValue("$row", row);
        if (items.Count == 0) command.CommandText = "DELETE FROM archive WHERE id = $row";
        else
        {
            command.CommandText = "UPDATE archive SET items = $items, n = $n, at = $at, last_at = $last WHERE id = $row";
            command.Parameters.AddWithValue("$items", Encode(items));
            command.Parameters.AddWithValue("$n", items.Count);
            command.Parameters.AddWithValue("$at", items.Min(item => item.At));
            command.Parameters.AddWithValue("$last", items.Max(item => item.At));
        }
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// The WHERE clause that selects the rows that may hold a matching item, with its parameters added to
    /// <paramref name="command"/>: exact for a row of one item, a superset for a packed row.
    /// </summary>
    private string RowFilter(SqliteCommand command, string user, ArchiveQuery query)
    {
        var where = "a.store = $store AND a.user = $user";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        if (query.Start is { } start) { where += " AND COALESCE(a.last_at, a.at) >= $start"; command.Parameters.AddWithValue("$start", start.ToUnixTimeMilliseconds()); }
        if (query.End is { } end) { where += " AND a.at <= $end"; command.Parameters.AddWithValue("$end", end.ToUnixTimeMilliseconds()); }
        if (query.With is { } with) { where += " AND (a.items IS NOT NULL OR a.with_jid = $with)"; command.Parameters.AddWithValue("$with", with); }
        if (query.WithFull is { } full) { where += " AND (a.items IS NOT NULL OR a.with_full = $full)"; command.Parameters.AddWithValue("$full", full); }
        if (query.AfterId is { } after) { where += " AND a.id >= $after"; command.Parameters.AddWithValue("$after", RowOf(after)); }
        if (query.BeforeId is { } before) { where += " AND a.id <= $before"; command.Parameters.AddWithValue("$before", RowOf(before)); }
        if (query.Keys is { } keys)
        {
            if (keys.Count == 0) return where + " AND 0";
            var names = new List<string>(keys.Count);
            foreach (var key in keys)
            {
                var parameter = "$k" + names.Count;
                names.Add(parameter);
                command.Parameters.AddWithValue(parameter, key);
            }
            // Stanza-ids that are version 7 UUIDs carry the time they were made, which is the item's: only packed rows
            // around those times can hold them.
            var packed = "a.items IS NOT NULL";
            if (TimesOf(keys) is var (earliest, latest))
            {
                packed += " AND COALESCE(a.last_at, a.at) >= $kfirst AND a.at <= $klast";
                command.Parameters.AddWithValue("$kfirst", earliest - KeyTimeSlack);
                command.Parameters.AddWithValue("$klast", latest + KeyTimeSlack);
            }
            where += $" AND (({packed}) OR a.key IN ({string.Join(", ", names)}))";
        }
        return where;
    }

    /// <summary>How far an item's time may lie from the time in its stanza-id (both are taken together; this is slack).</summary>
    private const long KeyTimeSlack = 86_400_000;

    /// <summary>The earliest and latest time in the keys when all are version 7 UUIDs, else null.</summary>
    private static (long, long)? TimesOf(IReadOnlyCollection<string> keys)
    {
        var (earliest, latest) = (long.MaxValue, long.MinValue);
        foreach (var key in keys)
        {
            if (!Guid.TryParseExact(key, "D", out var id) || id.Version != 7) return null;
            var ms = Convert.ToInt64(string.Concat(key.AsSpan(0, 8), key.AsSpan(9, 4)), 16);
            (earliest, latest) = (Math.Min(earliest, ms), Math.Max(latest, ms));
        }
        return (earliest, latest);
    }

    /// <summary>
    /// Calls <paramref name="visit"/> with each item matching <paramref name="query"/>, in id order (newest first with
    /// <see cref="ArchiveQuery.Newest"/>), with its row and, for a packed row, the row's items, until it returns false
    /// or <see cref="ArchiveQuery.Limit"/> items were visited.
    /// </summary>
    private void Scan(SqliteConnection connection, SqliteTransaction? transaction, string user, ArchiveQuery query, Func<ArchiveItem, long, List<Item>?, bool> visit)
    {
        if (query.Limit is <= 0) return;
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT a.id, a.at, a.with_jid, a.value, a.key, a.with_full, b.key, b.value, a.items FROM archive AS a " +
            $"LEFT JOIN archive_body AS b ON b.id = a.body WHERE {RowFilter(command, user, query)} ORDER BY a.id{(query.Newest ? " DESC" : "")}";
        var keys = query.Keys is { Count: > 4 } many ? many.ToHashSet(StringComparer.Ordinal) : query.Keys;
        var (start, end) = (query.Start?.ToUnixTimeMilliseconds(), query.End?.ToUnixTimeMilliseconds());
        bool Matches(long id, long at, string with, string? withFull, string? key) =>
            (start is null || at >= start) && (end is null || at <= end) && (query.With is null || with == query.With) &&
            (query.WithFull is null || withFull == query.WithFull) && (query.AfterId is null || id > query.AfterId) &&
            (query.BeforeId is null || id < query.BeforeId) && (keys is null || key is not null && keys.Contains(key));
        var visited = 0;
        bool Visit(ArchiveItem item, long row, List<Item>? packed) => visit(item, row, packed) && ++visited != query.Limit;

        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var row = reader.GetInt64(0);
            if (reader.IsDBNull(8))
            {
                var (at, with, key) = (reader.GetInt64(1), reader.GetString(2), reader.IsDBNull(4) ? null : reader.GetString(4));
                var id = ItemId(row, 0);
                if (!Matches(id, at, with, reader.IsDBNull(5) ? null : reader.GetString(5), key)) continue;
                var own = reader.GetString(3);
                var shared = reader.IsDBNull(6) ? null : ((string BodyKey, string Own)?)(reader.GetString(6), own);
                if (!Visit(new(id, DateTimeOffset.FromUnixTimeMilliseconds(at), with, shared is null ? own : reader.GetString(7)) { Key = key, Shared = shared }, row, null)) return;
                continue;
            }
            var items = Decode((byte[])reader.GetValue(8));
            for (var i = 0; i < items.Count; i++)
            {
                var item = items[query.Newest ? items.Count - 1 - i : i];
                var id = ItemId(row, item.Index);
                if (!Matches(id, item.At, item.With, item.WithFull, item.Key)) continue;
                var shared = item.BodyKey is { } bodyKey ? ((string BodyKey, string Own)?)(bodyKey, item.Value) : null;
                var value = shared is null ? item.Value : item.BodyValue ?? throw new InvalidDataException("an archive item lacks its body");
                if (!Visit(new(id, DateTimeOffset.FromUnixTimeMilliseconds(item.At), item.With, value) { Key = item.Key, Shared = shared }, row, items)) return;
            }
        }
    }

    private IReadOnlyList<ArchiveItem> Run(string user, ArchiveQuery query, bool take)
    {
        if (take && (query.With is not null || query.WithFull is not null || query.Start is not null || query.End is not null || query.Keys is not null || query.Newest))
            throw new NotSupportedException("TakeAsync supports id ranges and limits only.");
        using var connection = storage.Open();
        using var transaction = take ? connection.BeginTransaction(deferred: false) : null;
        var items = new List<ArchiveItem>();
        var packedRows = take ? new Dictionary<long, List<Item>>() : null;
        var (firstRow, lastRow) = (long.MaxValue, long.MinValue);
        Scan(connection, transaction, user, query, (item, row, packed) =>
        {
            items.Add(item);
            if (packed is null) (firstRow, lastRow) = (Math.Min(firstRow, row), Math.Max(lastRow, row));
            else packedRows?.TryAdd(row, packed);
            return true;
        });
        if (take && items.Count > 0)
        {
            // Taken in id order with no other filter: every single-item row between the first and the last taken is taken.
            if (firstRow <= lastRow)
            {
                DeleteItems(connection, transaction!, "a.store = $store AND a.user = $user AND a.items IS NULL AND a.id >= $first AND a.id <= $last", delete =>
                {
                    delete.Parameters.AddWithValue("$store", name);
                    delete.Parameters.AddWithValue("$user", user);
                    delete.Parameters.AddWithValue("$first", firstRow);
                    delete.Parameters.AddWithValue("$last", lastRow);
                });
            }
            var taken = items.Select(item => item.Id).ToHashSet();
            foreach (var (row, packed) in packedRows!)
                Repack(connection, transaction!, row, packed.FindAll(item => !taken.Contains(ItemId(row, item.Index))));
        }
        transaction?.Commit();
        return items;
    }
}
