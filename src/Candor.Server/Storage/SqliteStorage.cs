using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Candor.Server.Storage;

/// <summary>
/// The embedded backend: one SQLite file in WAL mode with synchronous=NORMAL, so a write that returned is
/// durable against a crash of the process. Several processes (the server and <c>candor user ...</c>) may use
/// the same file at once; busy_timeout makes a writer wait for the other rather than fail.
/// </summary>
public sealed partial class SqliteStorage : IStorage
{
    /// <summary>The database's name in the data directory.</summary>
    public const string FileName = "candor.db";
    private const int SchemaVersion = 1;
    private readonly string _connectionString;

    public SqliteStorage(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        Migrate();
    }

    internal SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    private void Migrate()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL;";
        command.ExecuteNonQuery();
        command.CommandText = "PRAGMA user_version;";
        var version = Convert.ToInt32(command.ExecuteScalar());
        if (version >= SchemaVersion)
        {
            AddArchiveKeys(connection);
            AddArchiveFullJids(connection);
            return;
        }
        using var transaction = connection.BeginTransaction();
        command.Transaction = transaction;
        command.CommandText = """
            CREATE TABLE IF NOT EXISTS keyval (store TEXT NOT NULL, user TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (store, user));
            CREATE TABLE IF NOT EXISTS map (store TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (store, user, key));
            CREATE TABLE IF NOT EXISTS archive (id INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL, user TEXT NOT NULL,
                at INTEGER NOT NULL, with_jid TEXT NOT NULL, value TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS archive_by_user ON archive (store, user, id);
            PRAGMA user_version = 1;
            """;
        command.ExecuteNonQuery();
        transaction.Commit();
        AddArchiveKeys(connection);
        AddArchiveFullJids(connection);
    }

    /// <summary>
    /// The caller-supplied item ids (XEP-0359 stanza-ids) of archive stores, added to databases made before them;
    /// checked by column rather than by schema version, so that it composes with other migrations.
    /// </summary>
    private static void AddArchiveKeys(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM pragma_table_info('archive') WHERE name = 'key'";
        if (Convert.ToInt32(command.ExecuteScalar()) == 0)
        {
            command.CommandText = "ALTER TABLE archive ADD COLUMN key TEXT;";
            command.ExecuteNonQuery();
        }
        // The key leads the index: stanza-ids are version 7 UUIDs, which grow with time, so each new row's entry goes
        // to the end of the index instead of to one of as many places as there are accounts writing (a page written
        // per row and batch). Databases made before are re-indexed once.
        command.CommandText = """
            DROP INDEX IF EXISTS archive_by_key;
            CREATE INDEX IF NOT EXISTS archive_by_stanza_id ON archive (key, store, user) WHERE key IS NOT NULL;
            """;
        command.ExecuteNonQuery();
    }

    /// <summary>The correspondent's full JID of archive entries (XEP-0313 'with' a full JID), added like the keys.</summary>
    private static void AddArchiveFullJids(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM pragma_table_info('archive') WHERE name = 'with_full'";
        if (Convert.ToInt32(command.ExecuteScalar()) > 0) return;
        command.CommandText = "ALTER TABLE archive ADD COLUMN with_full TEXT;";
        command.ExecuteNonQuery();
    }

    public IKeyValueStore OpenKeyValue(string name) => new SqliteKeyValueStore(this, name);
    public IMapStore OpenMap(string name) => new SqliteMapStore(this, name);
    public IArchiveStore OpenArchive(string name) => new SqliteArchiveStore(this, name);

    public Task DeleteUserAsync(string user)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        foreach (var table in new[] { "keyval", "map", "archive" })
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"DELETE FROM {table} WHERE user = $user";
            command.Parameters.AddWithValue("$user", user);
            command.ExecuteNonQuery();
        }
        transaction.Commit();
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        using (var connection = Open())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
            command.ExecuteNonQuery();
        }
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}

internal sealed class SqliteKeyValueStore(SqliteStorage storage, string name) : IKeyValueStore
{
    public Task<string?> GetAsync(string user)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM keyval WHERE store = $store AND user = $user";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        return Task.FromResult(command.ExecuteScalar() as string);
    }

    public Task SetAsync(string user, string? value)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = value is null
            ? "DELETE FROM keyval WHERE store = $store AND user = $user"
            : "INSERT INTO keyval (store, user, value) VALUES ($store, $user, $value) ON CONFLICT (store, user) DO UPDATE SET value = excluded.value";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        if (value is not null) command.Parameters.AddWithValue("$value", value);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> ListUsersAsync()
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT user FROM keyval WHERE store = $store ORDER BY user";
        command.Parameters.AddWithValue("$store", name);
        var users = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) users.Add(reader.GetString(0));
        return Task.FromResult<IReadOnlyList<string>>(users);
    }

    public Task<IReadOnlyList<string>> AddManyAsync(IReadOnlyList<KeyValuePair<string, string>> values)
    {
        using var connection = storage.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO keyval (store, user, value) VALUES ($store, $user, $value) ON CONFLICT (store, user) DO NOTHING";
        command.Parameters.AddWithValue("$store", name);
        var user = command.Parameters.Add("$user", SqliteType.Text);
        var value = command.Parameters.Add("$value", SqliteType.Text);
        var added = new List<string>();
        foreach (var pair in values)
        {
            user.Value = pair.Key;
            value.Value = pair.Value;
            if (command.ExecuteNonQuery() == 1) added.Add(pair.Key);
        }
        transaction.Commit();
        return Task.FromResult<IReadOnlyList<string>>(added);
    }
}

internal sealed class SqliteMapStore(SqliteStorage storage, string name) : IMapStore
{
    public Task<string?> GetAsync(string user, string key)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM map WHERE store = $store AND user = $user AND key = $key";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        command.Parameters.AddWithValue("$key", key);
        return Task.FromResult(command.ExecuteScalar() as string);
    }

    public Task SetAsync(string user, string key, string? value)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = value is null
            ? "DELETE FROM map WHERE store = $store AND user = $user AND key = $key"
            : "INSERT INTO map (store, user, key, value) VALUES ($store, $user, $key, $value) ON CONFLICT (store, user, key) DO UPDATE SET value = excluded.value";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        command.Parameters.AddWithValue("$key", key);
        if (value is not null) command.Parameters.AddWithValue("$value", value);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyDictionary<string, string>> GetAllAsync(string user)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT key, value FROM map WHERE store = $store AND user = $user";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        var items = new Dictionary<string, string>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) items[reader.GetString(0)] = reader.GetString(1);
        return Task.FromResult<IReadOnlyDictionary<string, string>>(items);
    }
}

internal sealed class SqliteArchiveStore(SqliteStorage storage, string name) : IArchiveStore
{
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
        return Task.FromResult(Convert.ToInt64(command.ExecuteScalar()));
    }

    public Task<IReadOnlyList<ArchiveItem>> QueryAsync(string user, ArchiveQuery query) =>
        Task.FromResult(Run(user, query, take: false));

    public Task<IReadOnlyList<ArchiveItem>> TakeAsync(string user, ArchiveQuery query) =>
        Task.FromResult(Run(user, query, take: true));

    public Task<int> CountAsync(string user) => CountAsync(user, ArchiveQuery.All);

    public Task<int> CountAsync(string user, ArchiveQuery query)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM archive WHERE {Where(command, user, query)}";
        return Task.FromResult(Convert.ToInt32(command.ExecuteScalar()));
    }

    /// <summary>
    /// One single-row INSERT, prepared once and stepped per entry with its values bound by position, all in one
    /// transaction. Through SqliteCommand a row cost several times the row itself: it looks every parameter up by
    /// name at each execution (quadratic in a multi-row INSERT) and makes a data reader per execution.
    /// </summary>
    public Task AppendBatchAsync(IReadOnlyList<ArchiveEntry> entries)
    {
        if (entries.Count == 0) return Task.CompletedTask;
        using var connection = storage.Open();
        var db = connection.Handle!;
        // The indexes' pages that each row's insert walks stay cached beyond SQLite's default 2 MB. The WAL is copied
        // into the database every 10,000 pages (40 MB) rather than 1,000: the pages a run of batches rewrites (the
        // ends of the table and the stanza-id index, each account's part of its index) are then copied once for many
        // batches (15 % less CPU per entry in the write-path benchmark). Durability is the WAL's either way.
        Check(db, raw.sqlite3_exec(db, "PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 10000"), raw.SQLITE_OK);
        using var transaction = connection.BeginTransaction();
        Check(db, raw.sqlite3_prepare_v2(db, "INSERT INTO archive (store, user, key, at, with_jid, value, with_full) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", out var insert), raw.SQLITE_OK);
        using (insert)
        {
            raw.sqlite3_bind_text(insert, 1, name);
            foreach (var entry in entries)
            {
                raw.sqlite3_bind_text(insert, 2, entry.User);
                raw.sqlite3_bind_text(insert, 3, entry.Key);
                raw.sqlite3_bind_int64(insert, 4, entry.When.ToUnixTimeMilliseconds());
                raw.sqlite3_bind_text(insert, 5, entry.With);
                raw.sqlite3_bind_text(insert, 6, entry.Value);
                if (entry.WithFull is { } full) raw.sqlite3_bind_text(insert, 7, full);
                else raw.sqlite3_bind_null(insert, 7);
                Check(db, raw.sqlite3_step(insert), raw.SQLITE_DONE);
                raw.sqlite3_reset(insert);
            }
        }
        transaction.Commit();
        return Task.CompletedTask;
    }

    private static void Check(sqlite3 db, int result, int expected)
    {
        if (result != expected) SqliteException.ThrowExceptionForRC(result, db);
    }

    public Task<int> DeleteAsync(string user)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM archive WHERE store = $store AND user = $user";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        return Task.FromResult(command.ExecuteNonQuery());
    }

    public Task<int> DeleteOlderThanAsync(DateTimeOffset before)
    {
        using var connection = storage.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM archive WHERE store = $store AND at < $before";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$before", before.ToUnixTimeMilliseconds());
        return Task.FromResult(command.ExecuteNonQuery());
    }

    /// <summary>The WHERE clause of the query's filters, with its parameters added to <paramref name="command"/>.</summary>
    private string Where(SqliteCommand command, string user, ArchiveQuery query)
    {
        // Asked for a few ids, SQLite would rather walk the account's part of archive_by_user (its two equal columns
        // and the order by id) than look each id up in archive_by_stanza_id; the unary + keeps it from using them.
        var where = query.Keys is null ? "store = $store AND user = $user" : "+store = $store AND +user = $user";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        if (query.Start is { } start) { where += " AND at >= $start"; command.Parameters.AddWithValue("$start", start.ToUnixTimeMilliseconds()); }
        if (query.End is { } end) { where += " AND at <= $end"; command.Parameters.AddWithValue("$end", end.ToUnixTimeMilliseconds()); }
        if (query.With is { } with) { where += " AND with_jid = $with"; command.Parameters.AddWithValue("$with", with); }
        if (query.WithFull is { } full) { where += " AND with_full = $full"; command.Parameters.AddWithValue("$full", full); }
        if (query.AfterId is { } after) { where += " AND id > $after"; command.Parameters.AddWithValue("$after", after); }
        if (query.BeforeId is { } before) { where += " AND id < $before"; command.Parameters.AddWithValue("$before", before); }
        if (query.Keys is { } keys)
        {
            var names = new List<string>(keys.Count);
            foreach (var key in keys)
            {
                var parameter = "$k" + names.Count;
                names.Add(parameter);
                command.Parameters.AddWithValue(parameter, key);
            }
            where += names.Count == 0 ? " AND 0" : $" AND key IN ({string.Join(", ", names)})";
        }
        return where;
    }

    private IReadOnlyList<ArchiveItem> Run(string user, ArchiveQuery query, bool take)
    {
        if (take && (query.With is not null || query.WithFull is not null || query.Start is not null || query.End is not null || query.Keys is not null || query.Newest))
            throw new NotSupportedException("TakeAsync supports id ranges and limits only.");
        using var connection = storage.Open();
        using var transaction = take ? connection.BeginTransaction(deferred: false) : null;
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        var where = Where(command, user, query);
        var limit = query.Limit is { } l ? $" LIMIT {l}" : "";
        command.CommandText = $"SELECT id, at, with_jid, value, key FROM archive WHERE {where} ORDER BY id{(query.Newest ? " DESC" : "")}{limit}";
        var items = new List<ArchiveItem>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
                items.Add(new(reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetString(2), reader.GetString(3))
                {
                    Key = reader.IsDBNull(4) ? null : reader.GetString(4),
                });
        }
        if (take && items.Count > 0)
        {
            using var delete = connection.CreateCommand();
            delete.Transaction = transaction;
            delete.CommandText = "DELETE FROM archive WHERE store = $store AND user = $user AND id >= $first AND id <= $last";
            delete.Parameters.AddWithValue("$store", name);
            delete.Parameters.AddWithValue("$user", user);
            delete.Parameters.AddWithValue("$first", items[0].Id);
            delete.Parameters.AddWithValue("$last", items[^1].Id);
            delete.ExecuteNonQuery();
        }
        transaction?.Commit();
        return items;
    }
}
