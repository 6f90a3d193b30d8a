using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;

namespace Candor.Server.Storage;

public sealed record ImportCounts(long KeyValue, long Map, long Archive, long ArchiveBodies)
{
    public long Total => KeyValue + Map + Archive + ArchiveBodies;
}

public sealed partial class PostgresStorage
{
    /// <summary>
    /// <c>candor migrate --from-sqlite</c>: copies every record of <paramref name="source"/> as it is stored (sealed
    /// values and hashed names included, archive ids kept), in one transaction. The sealed records open with the
    /// same master key afterwards. Refuses a database that holds any record already.
    /// </summary>
    public async Task<ImportCounts> ImportAsync(SqliteStorage source)
    {
        await using var connection = await OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var check = new NpgsqlCommand(
            "LOCK TABLE keyval, map, archive, archive_body IN EXCLUSIVE MODE; " +
            "SELECT EXISTS (SELECT 1 FROM keyval) OR EXISTS (SELECT 1 FROM map) OR EXISTS (SELECT 1 FROM archive) OR EXISTS (SELECT 1 FROM archive_body)", connection, transaction))
        {
            if ((bool)(await check.ExecuteScalarAsync())!)
                throw new InvalidOperationException("the PostgreSQL database holds Candor data already; migrate into an empty database");
        }
        using var sqlite = source.Open();
        var keyValue = await CopyAsync(connection, sqlite, "SELECT store, user, value FROM keyval ORDER BY rowid",
            "COPY keyval (store, account, value) FROM STDIN (FORMAT BINARY)", [NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text]);
        var map = await CopyAsync(connection, sqlite, "SELECT store, user, key, value FROM map ORDER BY rowid",
            "COPY map (store, account, key, value) FROM STDIN (FORMAT BINARY)", [NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text]);
        var bodies = await CopyAsync(connection, sqlite, "SELECT id, store, key, refs, value FROM archive_body ORDER BY id",
            "COPY archive_body (id, store, key, refs, value) FROM STDIN (FORMAT BINARY)",
            [NpgsqlDbType.Bigint, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Integer, NpgsqlDbType.Text]);
        var archive = await CopyAsync(connection, sqlite, $"SELECT id << {SqliteArchiveChunk.IndexBits}, store, user, at, with_jid, value, key, with_full, body FROM archive WHERE items IS NULL ORDER BY id",
            "COPY archive (id, store, account, at, with_jid, value, key, with_full, body) FROM STDIN (FORMAT BINARY)",
            [NpgsqlDbType.Bigint, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Bigint, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Bigint]);
        var (packed, packedBodies) = await CopyPackedAsync(connection, sqlite);
        archive += packed;
        bodies += packedBodies;
        // The ids were copied: new items and bodies continue after them, as they would have in SQLite.
        await using (var sequence = new NpgsqlCommand(
            "SELECT setval(pg_get_serial_sequence('archive', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM archive; " +
            "SELECT setval(pg_get_serial_sequence('archive_body', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM archive_body", connection, transaction))
            await sequence.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        return new ImportCounts(keyValue, map, archive, bodies);
    }

    /// <summary>
    /// The SQLite archive's packed rows (<see cref="SqliteArchiveChunk"/>) as a row per item, each with the id it had,
    /// and each item's copy of a shared body as a body of its own (numbered after the bodies copied before): one pass
    /// for the bodies and one for the items, as one COPY runs at a time.
    /// </summary>
    private static async Task<(long Items, long Bodies)> CopyPackedAsync(NpgsqlConnection target, SqliteConnection source)
    {
        long firstBody;
        await using (var max = new NpgsqlCommand("SELECT COALESCE(MAX(id), 0) + 1 FROM archive_body", target))
            firstBody = (long)(await max.ExecuteScalarAsync())!;
        long bodies = 0, items = 0;
        await using (var import = await target.BeginBinaryImportAsync("COPY archive_body (id, store, key, refs, value) FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var (_, store, _, packed) in ReadPacked(source))
            {
                foreach (var item in packed)
                {
                    if (item.BodyKey is null) continue;
                    await import.WriteRowAsync(default, firstBody + bodies++, store, item.BodyKey, 1, item.BodyValue);
                }
            }
            await import.CompleteAsync();
        }
        bodies = 0;
        await using (var import = await target.BeginBinaryImportAsync("COPY archive (id, store, account, at, with_jid, value, key, with_full, body) FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var (row, store, user, packed) in ReadPacked(source))
            {
                foreach (var item in packed)
                {
                    await import.StartRowAsync();
                    await import.WriteAsync(SqliteArchiveChunk.ItemId(row, item.Index), NpgsqlDbType.Bigint);
                    await import.WriteAsync(store, NpgsqlDbType.Text);
                    await import.WriteAsync(user, NpgsqlDbType.Text);
                    await import.WriteAsync(item.At, NpgsqlDbType.Bigint);
                    await import.WriteAsync(item.With, NpgsqlDbType.Text);
                    await import.WriteAsync(item.Value, NpgsqlDbType.Text);
                    await import.WriteAsync(item.Key, NpgsqlDbType.Text);
                    if (item.WithFull is { } full) await import.WriteAsync(full, NpgsqlDbType.Text);
                    else await import.WriteNullAsync();
                    if (item.BodyKey is null) await import.WriteNullAsync();
                    else await import.WriteAsync(firstBody + bodies++, NpgsqlDbType.Bigint);
                    items++;
                }
            }
            await import.CompleteAsync();
        }
        return (items, bodies);
    }

    private static IEnumerable<(long Row, string Store, string User, List<SqliteArchiveChunk.Item> Items)> ReadPacked(SqliteConnection source)
    {
        using var read = source.CreateCommand();
        read.CommandText = "SELECT id, store, user, items FROM archive WHERE items IS NOT NULL ORDER BY id";
        using var reader = read.ExecuteReader();
        while (reader.Read()) yield return (reader.GetInt64(0), reader.GetString(1), reader.GetString(2), SqliteArchiveChunk.Decode((byte[])reader.GetValue(3)));
    }

    private static async Task<long> CopyAsync(NpgsqlConnection target, SqliteConnection source, string select, string copy, NpgsqlDbType[] columns)
    {
        using var read = source.CreateCommand();
        read.CommandText = select;
        using var reader = read.ExecuteReader();
        await using var import = await target.BeginBinaryImportAsync(copy);
        var rows = 0L;
        while (reader.Read())
        {
            await import.StartRowAsync();
            for (var i = 0; i < columns.Length; i++)
            {
                if (reader.IsDBNull(i)) await import.WriteNullAsync();
                else if (columns[i] == NpgsqlDbType.Bigint) await import.WriteAsync(reader.GetInt64(i), NpgsqlDbType.Bigint);
                else if (columns[i] == NpgsqlDbType.Integer) await import.WriteAsync(reader.GetInt32(i), NpgsqlDbType.Integer);
                else await import.WriteAsync(reader.GetString(i), NpgsqlDbType.Text);
            }
            rows++;
        }
        await import.CompleteAsync();
        return rows;
    }
}

/// <summary><c>candor migrate --from-sqlite</c>: a SQLite deployment's data into PostgreSQL, under the same master key.</summary>
public static class SqliteToPostgres
{
    /// <summary>
    /// Copies the SQLite database of <paramref name="options"/>' data directory into its <see cref="ServerOptions.Postgres"/>
    /// database. The SQLite database is first opened sealed (sealing it if an earlier version left plaintext, and
    /// refusing a master key that does not open it); the copy is then opened sealed from PostgreSQL as a check.
    /// </summary>
    public static async Task<ImportCounts> RunAsync(Hosting.ServerOptions options)
    {
        var postgres = options.Postgres ?? throw new Hosting.OptionsException("--postgres is required: the database to copy into");
        var path = Path.Combine(options.DataDirectory, "candor.db");
        if (!File.Exists(path)) throw new Hosting.OptionsException($"no Candor SQLite database in {Path.GetFullPath(options.DataDirectory)} (expected {path})");
        options.Postgres = null;
        try
        {
            await using (await SealedStorage.OpenAsync(options)) { }
        }
        finally
        {
            options.Postgres = postgres;
        }
        ImportCounts counts;
        await using (var source = new SqliteStorage(path))
        await using (var target = await PostgresStorage.OpenAsync(postgres))
            counts = await target.ImportAsync(source);
        await using (await SealedStorage.OpenAsync(options)) { }
        return counts;
    }
}
