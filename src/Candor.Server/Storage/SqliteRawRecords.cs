using Microsoft.Data.Sqlite;

namespace Candor.Server.Storage;

public sealed partial class SqliteStorage : IRawRecords
{
    public Task<long> RewriteAsync(Func<RawRecord, RawRecord?> rewrite, RawRecord? insert)
    {
        using var connection = Open();
        var changed = 0L;
        var outer = insert is null ? null : connection.BeginTransaction(deferred: false);
        foreach (var (shape, table, name, where) in SqliteTables)
        {
            for (var after = long.MinValue; ;)
            {
                var transaction = outer ?? connection.BeginTransaction(deferred: false);
                var page = ReadPage(connection, transaction, shape, table, name, where, after);
                foreach (var record in page)
                {
                    if (rewrite(record) is not { } replacement) continue;
                    using var update = connection.CreateCommand();
                    update.Transaction = transaction;
                    update.CommandText = shape switch
                    {
                        RecordShape.KeyValue => $"UPDATE {table} SET user = $user, value = $value WHERE rowid = $row",
                        RecordShape.ArchiveBody => $"UPDATE {table} SET value = $value WHERE rowid = $row",
                        _ => $"UPDATE {table} SET user = $user, {name} = $name, value = $value WHERE rowid = $row",
                    };
                    update.Parameters.AddWithValue("$user", replacement.User);
                    update.Parameters.AddWithValue("$name", replacement.Name);
                    update.Parameters.AddWithValue("$value", replacement.Value);
                    update.Parameters.AddWithValue("$row", record.Row);
                    update.ExecuteNonQuery();
                    changed++;
                }
                if (outer is null)
                {
                    transaction.Commit();
                    transaction.Dispose();
                }
                if (page.Count < RawTables.PageSize) break;
                after = page[^1].Row;
            }
        }
        for (var after = long.MinValue; ;)
        {
            var transaction = outer ?? connection.BeginTransaction(deferred: false);
            var page = ReadPackedPage(connection, transaction, after);
            foreach (var (row, store, user, items) in page)
            {
                var (rewritten, newUser) = (0, user);
                for (var i = 0; i < items.Count; i++)
                {
                    var item = items[i];
                    if (rewrite(RecordOf(row, store, user, item)) is not { } record) continue;
                    if (item.BodyKey is not null) items[i] = item with { BodyValue = record.Value };
                    else
                    {
                        items[i] = item with { With = record.Name, Value = record.Value };
                        newUser = record.User;
                    }
                    rewritten++;
                }
                if (rewritten == 0) continue;
                using var update = connection.CreateCommand();
                update.Transaction = transaction;
                update.CommandText = "UPDATE archive SET user = $user, items = $items WHERE rowid = $row";
                update.Parameters.AddWithValue("$user", newUser);
                update.Parameters.AddWithValue("$items", SqliteArchiveChunk.Encode(items));
                update.Parameters.AddWithValue("$row", row);
                update.ExecuteNonQuery();
                changed += rewritten;
            }
            if (outer is null)
            {
                transaction.Commit();
                transaction.Dispose();
            }
            if (page.Count < RawTables.PageSize) break;
            after = page[^1].Row;
        }
        if (outer is not null)
        {
            using var add = connection.CreateCommand();
            add.Transaction = outer;
            add.CommandText = "INSERT INTO keyval (store, user, value) VALUES ($store, $user, $value)";
            add.Parameters.AddWithValue("$store", insert!.Value.Store);
            add.Parameters.AddWithValue("$user", insert.Value.User);
            add.Parameters.AddWithValue("$value", insert.Value.Value);
            add.ExecuteNonQuery();
            outer.Commit();
            outer.Dispose();
        }
        return Task.FromResult(changed);
    }

    public Task<IReadOnlyDictionary<string, long>> CountArchiveItemsAsync()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT store, SUM(COALESCE(n, 1)) FROM archive GROUP BY store";
        using var reader = command.ExecuteReader();
        var counts = new Dictionary<string, long>();
        while (reader.Read()) counts[reader.GetString(0)] = reader.GetInt64(1);
        return Task.FromResult<IReadOnlyDictionary<string, long>>(counts);
    }

    public Task ScanAsync(Action<RawRecord> visit)
    {
        using var connection = Open();
        foreach (var (shape, table, name, where) in SqliteTables)
        {
            for (var after = long.MinValue; ;)
            {
                var page = ReadPage(connection, null, shape, table, name, where, after);
                foreach (var record in page) visit(record);
                if (page.Count < RawTables.PageSize) break;
                after = page[^1].Row;
            }
        }
        for (var after = long.MinValue; ;)
        {
            var page = ReadPackedPage(connection, null, after);
            foreach (var (row, store, user, items) in page)
                foreach (var item in items) visit(RecordOf(row, store, user, item));
            if (page.Count < RawTables.PageSize) break;
            after = page[^1].Row;
        }
        return Task.CompletedTask;
    }

    public Task CompactAsync()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "VACUUM; PRAGMA wal_checkpoint(TRUNCATE);";
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task FlushAsync()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        // A checkpoint syncs the WAL before copying it into the database and the database after.
        command.CommandText = "PRAGMA wal_checkpoint(FULL);";
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    /// <summary>The generic tables, the archive's packed rows left to <see cref="ReadPackedPage"/>.</summary>
    private static IEnumerable<(RecordShape Shape, string Table, string Name, string Where)> SqliteTables =>
        RawTables.All.Select(table => table.Table == "archive" ? table with { Where = table.Where + " AND items IS NULL" } : table);

    /// <summary>
    /// Packed archive rows (<see cref="SqliteArchiveChunk"/>) after <paramref name="after"/>: each item is a record, and
    /// so is its copy of a shared body (an item that refers to a body holds only a binding to it).
    /// </summary>
    private static List<(long Row, string Store, string User, List<SqliteArchiveChunk.Item> Items)> ReadPackedPage(SqliteConnection connection, SqliteTransaction? transaction, long after)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT rowid, store, user, items FROM archive WHERE rowid > $after AND items IS NOT NULL ORDER BY rowid LIMIT {RawTables.PageSize}";
        command.Parameters.AddWithValue("$after", after);
        var page = new List<(long, string, string, List<SqliteArchiveChunk.Item>)>(RawTables.PageSize);
        using var reader = command.ExecuteReader();
        while (reader.Read())
            page.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2), SqliteArchiveChunk.Decode((byte[])reader.GetValue(3))));
        return page;
    }

    /// <summary>A packed item as a record: its copy of a shared body when it refers to one, else its own sealed value.</summary>
    private static RawRecord RecordOf(long row, string store, string user, SqliteArchiveChunk.Item item) => item.BodyKey is { } bodyKey
        ? new RawRecord(RecordShape.ArchiveBody, SqliteArchiveChunk.ItemId(row, item.Index), store, "", bodyKey, item.BodyValue!)
        : new RawRecord(RecordShape.Archive, SqliteArchiveChunk.ItemId(row, item.Index), store, user, item.With, item.Value);

    private static List<RawRecord> ReadPage(SqliteConnection connection, SqliteTransaction? transaction, RecordShape shape, string table, string name, string where, long after)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        var user = shape == RecordShape.ArchiveBody ? "''" : "user";
        command.CommandText = $"SELECT rowid, store, {user}, {name}, value FROM {table} WHERE rowid > $after{where} ORDER BY rowid LIMIT {RawTables.PageSize}";
        command.Parameters.AddWithValue("$after", after);
        var page = new List<RawRecord>(RawTables.PageSize);
        using var reader = command.ExecuteReader();
        while (reader.Read())
            page.Add(new(shape, reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4)));
        return page;
    }
}
