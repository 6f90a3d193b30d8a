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
            AddArchivePacking(connection);
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
        AddArchivePacking(connection);
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

    /// <summary>Packed archive rows (<see cref="SqliteArchiveChunk"/>: the items, their count and latest time), added like the keys.</summary>
    private static void AddArchivePacking(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM pragma_table_info('archive') WHERE name = 'items'";
        if (Convert.ToInt32(command.ExecuteScalar()) > 0) return;
        command.CommandText = "ALTER TABLE archive ADD COLUMN items BLOB; ALTER TABLE archive ADD COLUMN last_at INTEGER; ALTER TABLE archive ADD COLUMN n INTEGER;";
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

