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
        var archive = await CopyAsync(connection, sqlite, "SELECT id, store, user, at, with_jid, value, key, with_full, body FROM archive ORDER BY id",
            "COPY archive (id, store, account, at, with_jid, value, key, with_full, body) FROM STDIN (FORMAT BINARY)",
            [NpgsqlDbType.Bigint, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Bigint, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Text, NpgsqlDbType.Bigint]);
        // The ids were copied: new items and bodies continue after them, as they would have in SQLite.
        await using (var sequence = new NpgsqlCommand(
            "SELECT setval(pg_get_serial_sequence('archive', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM archive; " +
            "SELECT setval(pg_get_serial_sequence('archive_body', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM archive_body", connection, transaction))
            await sequence.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        return new ImportCounts(keyValue, map, archive, bodies);
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
