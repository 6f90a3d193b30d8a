using Microsoft.Data.Sqlite;

namespace Candor.Server.Storage;

public sealed partial class SqliteStorage : IRawRecords
{
    public Task<long> RewriteAsync(Func<RawRecord, RawRecord?> rewrite, RawRecord? insert)
    {
        using var connection = Open();
        var changed = 0L;
        var outer = insert is null ? null : connection.BeginTransaction(deferred: false);
        foreach (var (shape, table, name, where) in RawTables.All)
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
        command.CommandText = "SELECT store, COUNT(*) FROM archive GROUP BY store";
        using var reader = command.ExecuteReader();
        var counts = new Dictionary<string, long>();
        while (reader.Read()) counts[reader.GetString(0)] = reader.GetInt64(1);
        return Task.FromResult<IReadOnlyDictionary<string, long>>(counts);
    }

    public Task ScanAsync(Action<RawRecord> visit)
    {
        using var connection = Open();
        foreach (var (shape, table, name, where) in RawTables.All)
        {
            for (var after = long.MinValue; ;)
            {
                var page = ReadPage(connection, null, shape, table, name, where, after);
                foreach (var record in page) visit(record);
                if (page.Count < RawTables.PageSize) break;
                after = page[^1].Row;
            }
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
