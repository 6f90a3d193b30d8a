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
            AddArchiveBodies(connection);
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
        AddArchiveBodies(connection);
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

    /// <summary>
    /// Bodies shared by archive items (<see cref="ArchiveBody"/>), added like the keys: items stored before keep their
    /// own value. No AUTOINCREMENT: a body's id is only ever looked up by the items that refer to it, and none is left
    /// when a body is deleted, so a reused id is harmless.
    /// </summary>
    private static void AddArchiveBodies(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM pragma_table_info('archive') WHERE name = 'body'";
        if (Convert.ToInt32(command.ExecuteScalar()) > 0) return;
        command.CommandText = """
            ALTER TABLE archive ADD COLUMN body INTEGER;
            CREATE TABLE IF NOT EXISTS archive_body (id INTEGER PRIMARY KEY, store TEXT NOT NULL, key TEXT NOT NULL,
                refs INTEGER NOT NULL, value TEXT NOT NULL);
            """;
        command.ExecuteNonQuery();
    }

    public IKeyValueStore OpenKeyValue(string name) => new SqliteKeyValueStore(this, name);
    public IMapStore OpenMap(string name) => new SqliteMapStore(this, name);
    public IArchiveStore OpenArchive(string name) => new SqliteArchiveStore(this, name);

    public Task DeleteUserAsync(string user)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        SqliteArchiveStore.DeleteItems(connection, transaction, "a.user = $user", command => command.Parameters.AddWithValue("$user", user));
        foreach (var table in new[] { "keyval", "map" })
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
        command.CommandText = $"SELECT COUNT(*) FROM archive AS a WHERE {Where(command, user, query)}";
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
        Check(db, raw.sqlite3_prepare_v2(db, "INSERT INTO archive (store, user, key, at, with_jid, value, with_full, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", out var insert), raw.SQLITE_OK);
        Check(db, raw.sqlite3_prepare_v2(db, "INSERT INTO archive_body (store, key, refs, value) VALUES (?1, ?2, ?3, ?4)", out var insertBody), raw.SQLITE_OK);
        using (insert)
        using (insertBody)
        {
            raw.sqlite3_bind_text(insert, 1, name);
            raw.sqlite3_bind_text(insertBody, 1, name);
            foreach (var entry in entries)
            {
                if (entry.Body is { } body)
                {
                    // The first entry of those sharing it stores it; they are appended in order (see ArchiveEntry.Body).
                    if (body.Row == 0)
                    {
                        raw.sqlite3_bind_text(insertBody, 2, body.Key);
                        raw.sqlite3_bind_int(insertBody, 3, body.Refs);
                        raw.sqlite3_bind_text(insertBody, 4, body.Value);
                        Check(db, raw.sqlite3_step(insertBody), raw.SQLITE_DONE);
                        raw.sqlite3_reset(insertBody);
                        body.Row = raw.sqlite3_last_insert_rowid(db);
                    }
                    raw.sqlite3_bind_int64(insert, 8, body.Row);
                }
                else raw.sqlite3_bind_null(insert, 8);
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

    public Task<int> DeleteAsync(string user) => Task.FromResult(Delete("a.store = $store AND a.user = $user", command =>
    {
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
    }));

    public Task<int> DeleteOlderThanAsync(DateTimeOffset before) => Task.FromResult(Delete("a.store = $store AND a.at < $before", command =>
    {
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$before", before.ToUnixTimeMilliseconds());
    }));

    private int Delete(string where, Action<SqliteCommand> bind)
    {
        using var connection = storage.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var deleted = DeleteItems(connection, transaction, where, bind);
        transaction.Commit();
        return deleted;
    }

    /// <summary>
    /// Deletes the archive items matching <paramref name="where"/> (of <c>archive AS a</c>) and every body that no item
    /// refers to any more; returns how many items it deleted.
    /// </summary>
    internal static int DeleteItems(SqliteConnection connection, SqliteTransaction transaction, string where, Action<SqliteCommand> bind)
    {
        using var delete = connection.CreateCommand();
        delete.Transaction = transaction;
        delete.CommandText = $"DELETE FROM archive AS a WHERE {where} RETURNING body";
        bind(delete);
        var deleted = 0;
        Dictionary<long, int>? released = null;
        using (var reader = delete.ExecuteReader())
        {
            while (reader.Read())
            {
                deleted++;
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

    /// <summary>The WHERE clause of the query's filters, with its parameters added to <paramref name="command"/>.</summary>
    private string Where(SqliteCommand command, string user, ArchiveQuery query)
    {
        // Asked for a few ids, SQLite would rather walk the account's part of archive_by_user (its two equal columns
        // and the order by id) than look each id up in archive_by_stanza_id; the unary + keeps it from using them.
        var where = query.Keys is null ? "a.store = $store AND a.user = $user" : "+a.store = $store AND +a.user = $user";
        command.Parameters.AddWithValue("$store", name);
        command.Parameters.AddWithValue("$user", user);
        if (query.Start is { } start) { where += " AND a.at >= $start"; command.Parameters.AddWithValue("$start", start.ToUnixTimeMilliseconds()); }
        if (query.End is { } end) { where += " AND a.at <= $end"; command.Parameters.AddWithValue("$end", end.ToUnixTimeMilliseconds()); }
        if (query.With is { } with) { where += " AND a.with_jid = $with"; command.Parameters.AddWithValue("$with", with); }
        if (query.WithFull is { } full) { where += " AND a.with_full = $full"; command.Parameters.AddWithValue("$full", full); }
        if (query.AfterId is { } after) { where += " AND a.id > $after"; command.Parameters.AddWithValue("$after", after); }
        if (query.BeforeId is { } before) { where += " AND a.id < $before"; command.Parameters.AddWithValue("$before", before); }
        if (query.Keys is { } keys)
        {
            var names = new List<string>(keys.Count);
            foreach (var key in keys)
            {
                var parameter = "$k" + names.Count;
                names.Add(parameter);
                command.Parameters.AddWithValue(parameter, key);
            }
            where += names.Count == 0 ? " AND 0" : $" AND a.key IN ({string.Join(", ", names)})";
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
        command.CommandText = $"SELECT a.id, a.at, a.with_jid, a.value, a.key, b.key, b.value FROM archive AS a LEFT JOIN archive_body AS b ON b.id = a.body " +
            $"WHERE {where} ORDER BY a.id{(query.Newest ? " DESC" : "")}{limit}";
        var items = new List<ArchiveItem>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                var own = reader.GetString(3);
                var shared = reader.IsDBNull(5) ? null : ((string BodyKey, string Own)?)(reader.GetString(5), own);
                items.Add(new(reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetString(2), shared is null ? own : reader.GetString(6))
                {
                    Key = reader.IsDBNull(4) ? null : reader.GetString(4),
                    Shared = shared,
                });
            }
        }
        if (take && items.Count > 0)
        {
            DeleteItems(connection, transaction!, "a.store = $store AND a.user = $user AND a.id >= $first AND a.id <= $last", delete =>
            {
                delete.Parameters.AddWithValue("$store", name);
                delete.Parameters.AddWithValue("$user", user);
                delete.Parameters.AddWithValue("$first", items[0].Id);
                delete.Parameters.AddWithValue("$last", items[^1].Id);
            });
        }
        transaction?.Commit();
        return items;
    }
}
