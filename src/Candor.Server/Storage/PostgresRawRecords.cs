using Npgsql;

namespace Candor.Server.Storage;

public sealed partial class PostgresStorage : IRawRecords
{
    public async Task<long> RewriteAsync(Func<RawRecord, RawRecord?> rewrite, RawRecord? insert)
    {
        await using var connection = await OpenAsync();
        var changed = 0L;
        var outer = insert is null ? null : await connection.BeginTransactionAsync();
        // Sealing a database for the first time: no other process may write until the marker commits with it.
        if (outer is not null)
            await Execute(connection, outer, "LOCK TABLE keyval, map, archive, archive_body IN SHARE ROW EXCLUSIVE MODE");
        foreach (var (shape, table, name, where) in RawTables.All)
        {
            for (var after = long.MinValue; ;)
            {
                var transaction = outer ?? await connection.BeginTransactionAsync();
                // FOR UPDATE: a concurrent write to a row of the page waits for this transaction rather than being
                // overwritten by the value it read before.
                var page = await ReadPageAsync(connection, transaction, shape, table, name, where, after, forUpdate: true);
                foreach (var record in page)
                {
                    if (rewrite(record) is not { } replacement) continue;
                    await using var update = new NpgsqlCommand(shape switch
                    {
                        RecordShape.KeyValue => $"UPDATE {table} SET account = @user, value = @value WHERE id = @row",
                        RecordShape.ArchiveBody => $"UPDATE {table} SET value = @value WHERE id = @row",
                        _ => $"UPDATE {table} SET account = @user, {name} = @name, value = @value WHERE id = @row",
                    }, connection, transaction);
                    update.Parameters.AddWithValue("user", replacement.User);
                    update.Parameters.AddWithValue("name", replacement.Name);
                    update.Parameters.AddWithValue("value", replacement.Value);
                    update.Parameters.AddWithValue("row", record.Row);
                    await update.ExecuteNonQueryAsync();
                    changed++;
                }
                if (outer is null)
                {
                    await transaction.CommitAsync();
                    await transaction.DisposeAsync();
                }
                if (page.Count < RawTables.PageSize) break;
                after = page[^1].Row;
            }
        }
        if (outer is not null)
        {
            await using var add = new NpgsqlCommand("INSERT INTO keyval (store, account, value) VALUES (@store, @user, @value)", connection, outer);
            add.Parameters.AddWithValue("store", insert!.Value.Store);
            add.Parameters.AddWithValue("user", insert.Value.User);
            add.Parameters.AddWithValue("value", insert.Value.Value);
            await add.ExecuteNonQueryAsync();
            await outer.CommitAsync();
            await outer.DisposeAsync();
        }
        return changed;
    }

    public async Task<IReadOnlyDictionary<string, long>> CountArchiveItemsAsync()
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT store, COUNT(*) FROM archive GROUP BY store";
        await using var reader = await command.ExecuteReaderAsync();
        var counts = new Dictionary<string, long>();
        while (await reader.ReadAsync()) counts[reader.GetString(0)] = reader.GetInt64(1);
        return counts;
    }

    public async Task ScanAsync(Action<RawRecord> visit)
    {
        await using var connection = await OpenAsync();
        foreach (var (shape, table, name, where) in RawTables.All)
        {
            for (var after = long.MinValue; ;)
            {
                var page = await ReadPageAsync(connection, null, shape, table, name, where, after, forUpdate: false);
                foreach (var record in page) visit(record);
                if (page.Count < RawTables.PageSize) break;
                after = page[^1].Row;
            }
        }
    }

    /// <summary>Rewrites the tables without the dead row versions that still hold overwritten values.</summary>
    public async Task CompactAsync()
    {
        await using var connection = await OpenAsync();
        await Execute(connection, null, "VACUUM FULL keyval, map, archive, archive_body");
    }

    /// <summary>Nothing to do: a PostgreSQL commit returns once its WAL record is flushed (synchronous_commit, on by default).</summary>
    public Task FlushAsync() => Task.CompletedTask;

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<List<RawRecord>> ReadPageAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction,
        RecordShape shape, string table, string name, string where, long after, bool forUpdate)
    {
        var user = shape == RecordShape.ArchiveBody ? "''" : "account";
        await using var command = new NpgsqlCommand(
            $"SELECT id, store, {user}, {name}, value FROM {table} WHERE id > @after{where} ORDER BY id LIMIT {RawTables.PageSize}{(forUpdate ? " FOR UPDATE" : "")}",
            connection, transaction);
        command.Parameters.AddWithValue("after", after);
        var page = new List<RawRecord>(RawTables.PageSize);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            page.Add(new(shape, reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4)));
        return page;
    }
}
