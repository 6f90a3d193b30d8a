using Candor.Server.Storage;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Candor.Server.Tests;

/// <summary>
/// The semantics every storage backend must have (Prosody's keyval, map and archive shapes). Run against
/// SQLite and PostgreSQL; a new backend derives from this class with its own <see cref="CreateStorageAsync"/>.
/// </summary>
public abstract class StorageConformanceTests : IAsyncLifetime
{
    protected IStorage Storage { get; private set; } = null!;

    protected abstract Task<IStorage> CreateStorageAsync();

    public async Task InitializeAsync() => Storage = await CreateStorageAsync();

    public virtual async Task DisposeAsync() => await Storage.DisposeAsync();

    /// <summary>The backend below <see cref="Storage"/>, as the sealing layer sees it.</summary>
    protected abstract IRawRecords Raw { get; }

    /// <summary>Distinct shared bodies stored (a backend may keep a copy with each item that refers to one).</summary>
    private async Task<int> CountBodiesAsync()
    {
        var bodies = new HashSet<string>();
        await Raw.ScanAsync(record =>
        {
            if (record.Shape == RecordShape.ArchiveBody) bodies.Add(record.Name);
        });
        return bodies.Count;
    }

    [Fact]
    public async Task Key_value_set_get_replace_remove_and_list()
    {
        var store = Storage.OpenKeyValue("kv");
        Assert.Null(await store.GetAsync("alice"));
        await store.SetAsync("alice", "one");
        await store.SetAsync("bob", "b");
        await store.SetAsync("alice", "two");
        Assert.Equal("two", await store.GetAsync("alice"));
        Assert.Equal(["alice", "bob"], await store.ListUsersAsync());
        await store.SetAsync("alice", null);
        Assert.Null(await store.GetAsync("alice"));
        Assert.Equal(["bob"], await store.ListUsersAsync());
        await store.SetAsync("nobody", null);
    }

    [Fact]
    public async Task Key_value_add_many_stores_only_the_accounts_without_a_value_and_names_them()
    {
        var store = Storage.OpenKeyValue("kv");
        await store.SetAsync("bob", "kept");
        var added = await store.AddManyAsync([new("alice", "a"), new("bob", "replaced?"), new("carol", "c")]);
        Assert.Equal(["alice", "carol"], added.Order(StringComparer.Ordinal));
        Assert.Equal("a", await store.GetAsync("alice"));
        Assert.Equal("kept", await store.GetAsync("bob"));
        Assert.Equal(["alice", "bob", "carol"], await store.ListUsersAsync());
        Assert.Empty(await store.AddManyAsync([new("alice", "again")]));
        Assert.Empty(await Storage.OpenKeyValue("other").ListUsersAsync());
    }

    [Fact]
    public async Task Stores_of_different_names_and_kinds_are_separate()
    {
        var a = Storage.OpenKeyValue("a");
        var b = Storage.OpenKeyValue("b");
        await a.SetAsync("alice", "in a");
        Assert.Null(await b.GetAsync("alice"));
        Assert.Empty(await b.ListUsersAsync());
        var map = Storage.OpenMap("a");
        Assert.Null(await map.GetAsync("alice", "alice"));
        Assert.Equal(0, await Storage.OpenArchive("a").CountAsync("alice"));
    }

    [Fact]
    public async Task Map_set_get_all_replace_and_remove_per_user()
    {
        var map = Storage.OpenMap("roster");
        await map.SetAsync("alice", "bob@x", "1");
        await map.SetAsync("alice", "carol@x", "2");
        await map.SetAsync("dave", "bob@x", "other user");
        await map.SetAsync("alice", "bob@x", "1b");
        Assert.Equal("1b", await map.GetAsync("alice", "bob@x"));
        var all = await map.GetAllAsync("alice");
        Assert.Equal(2, all.Count);
        Assert.Equal("2", all["carol@x"]);
        await map.SetAsync("alice", "carol@x", null);
        Assert.Null(await map.GetAsync("alice", "carol@x"));
        Assert.Single(await map.GetAllAsync("alice"));
        Assert.Empty(await map.GetAllAsync("nobody"));
        Assert.Equal("other user", await map.GetAsync("dave", "bob@x"));
    }

    [Fact]
    public async Task Values_keep_any_text_exactly()
    {
        var store = Storage.OpenKeyValue("text");
        const string value = "<x xmlns='a'>' \" ; -- DROP TABLE keyval; \u00e9\U0001F600\n\t</x>";
        await store.SetAsync("o'brien", value);
        Assert.Equal(value, await store.GetAsync("o'brien"));
    }

    [Fact]
    public async Task Archive_appends_in_order_and_queries_by_time_with_id_and_limit()
    {
        var archive = Storage.OpenArchive("mam");
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);
        var ids = new List<long>();
        for (var i = 0; i < 5; i++)
            ids.Add(await archive.AppendAsync("alice", t0.AddMinutes(i), i % 2 == 0 ? "bob@x" : "carol@x", "m" + i));
        await archive.AppendAsync("dave", t0, "bob@x", "not alice's");
        Assert.Equal(ids.Order(), ids);
        Assert.Equal(5, await archive.CountAsync("alice"));

        var all = await archive.QueryAsync("alice", ArchiveQuery.All);
        Assert.Equal(["m0", "m1", "m2", "m3", "m4"], all.Select(i => i.Value));
        Assert.Equal(t0.AddMinutes(3), all[3].When);
        Assert.Equal("carol@x", all[3].With);

        Assert.Equal(["m0", "m2", "m4"], (await archive.QueryAsync("alice", new ArchiveQuery { With = "bob@x" })).Select(i => i.Value));
        Assert.Equal(["m1", "m2", "m3"], (await archive.QueryAsync("alice", new ArchiveQuery { Start = t0.AddMinutes(1), End = t0.AddMinutes(3) })).Select(i => i.Value));
        Assert.Equal(["m2", "m3"], (await archive.QueryAsync("alice", new ArchiveQuery { AfterId = ids[1], BeforeId = ids[4] })).Select(i => i.Value));
        Assert.Equal(["m0", "m1"], (await archive.QueryAsync("alice", new ArchiveQuery { Limit = 2 })).Select(i => i.Value));
        Assert.Equal(5, await archive.CountAsync("alice"));
    }

    [Fact]
    public async Task Archive_batches_keep_keys_order_and_filters_count_delete_and_expire()
    {
        var archive = Storage.OpenArchive("mam");
        var t0 = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        await archive.AppendBatchAsync(
        [
            new ArchiveEntry("alice", "a1", t0, "bob@x", "one"),
            new ArchiveEntry("bob", "b1", t0, "alice@x", "for bob"),
            new ArchiveEntry("alice", "a2", t0.AddMinutes(1), "carol@x", "two"),
            new ArchiveEntry("alice", "a3", t0.AddMinutes(2), "bob@x", "three"),
        ]);
        await archive.AppendBatchAsync([]);
        var all = await archive.QueryAsync("alice", ArchiveQuery.All);
        Assert.Equal(["a1", "a2", "a3"], all.Select(i => i.Key));
        Assert.Equal(["three", "two"], (await archive.QueryAsync("alice", new ArchiveQuery { Newest = true, Limit = 2 })).Select(i => i.Value));
        Assert.Equal(["one", "three"], (await archive.QueryAsync("alice", new ArchiveQuery { Keys = ["a3", "a1", "b1", "zz"] })).Select(i => i.Value));
        Assert.Empty(await archive.QueryAsync("alice", new ArchiveQuery { Keys = [] }));
        Assert.Equal(2, await archive.CountAsync("alice", new ArchiveQuery { With = "bob@x", Limit = 1 }));
        Assert.Equal(1, await archive.CountAsync("alice", new ArchiveQuery { With = "bob@x", AfterId = all[0].Id }));
        Assert.Equal(2, await archive.CountAsync("alice", new ArchiveQuery { Start = t0.AddMinutes(1) }));
        Assert.Equal(3, await archive.CountAsync("alice"));
        var plain = await archive.AppendAsync("alice", t0, "x", "no key");
        Assert.Null((await archive.QueryAsync("alice", new ArchiveQuery { AfterId = plain - 1 }))[0].Key);

        Assert.Equal(3, await archive.DeleteOlderThanAsync(t0.AddMinutes(1)));
        Assert.Equal(["two", "three"], (await archive.QueryAsync("alice", ArchiveQuery.All)).Select(i => i.Value));
        Assert.Equal(0, await archive.CountAsync("bob"));
        Assert.Equal(2, await archive.DeleteAsync("alice"));
        Assert.Equal(0, await archive.CountAsync("alice"));
        Assert.Equal(0, await archive.DeleteAsync("alice"));

        // A large batch (the SQLite backend writes several rows per statement) keeps every row and its order.
        var many = Enumerable.Range(0, 150).Select(i => new ArchiveEntry(i % 2 == 0 ? "erin" : "fay", $"m{i}", t0.AddSeconds(i), "x@y", $"v{i}")).ToList();
        await archive.AppendBatchAsync(many);
        Assert.Equal(many.Where(e => e.User == "erin").Select(e => e.Key), (await archive.QueryAsync("erin", ArchiveQuery.All)).Select(i => i.Key));
        Assert.Equal(many.Where(e => e.User == "fay").Select(e => (e.Value, e.When)), (await archive.QueryAsync("fay", ArchiveQuery.All)).Select(i => (i.Value, i.When)));
    }

    [Fact]
    public async Task Archive_items_sharing_a_body_read_it_under_their_own_keys_until_the_last_of_them_is_deleted()
    {
        var archive = Storage.OpenArchive("arc");
        var now = DateTimeOffset.UtcNow;
        // The archive module gives a body as the serialized stanza's UTF-8 and its entries no value of their own (two).
        var (one, two, three) = (new ArchiveBody("b1", "<m>one</m>", refs: 2), new ArchiveBody("b2", "<m>two</m>"u8.ToArray(), refs: 2), new ArchiveBody("b3", "<m>three</m>", refs: 2));
        await archive.AppendBatchAsync([
            new ArchiveEntry("alice", "a1", now, "bob@x", "<m>one</m>") { Body = one },
            new ArchiveEntry("bob", "k1", now, "alice@x", "<m>one</m>") { Body = one },
            new ArchiveEntry("alice", "a2", now, "bob@x", "") { Body = two },
        ]);
        // The writer may end a batch between two entries that share a body: the next batch refers to the stored one.
        await archive.AppendBatchAsync([
            new ArchiveEntry("bob", "k2", now, "alice@x", "") { Body = two },
            new ArchiveEntry("alice", "a3", now.AddDays(-10), "carol@x", "<m>three</m>") { Body = three },
            new ArchiveEntry("carol", "c3", now.AddDays(-10), "alice@x", "<m>three</m>") { Body = three },
            new ArchiveEntry("alice", "a4", now, "bob@x", "<m>own</m>"),
        ]);
        Assert.Equal(3, await CountBodiesAsync());
        var alices = await archive.QueryAsync("alice", ArchiveQuery.All);
        Assert.Equal(["a1", "a2", "a3", "a4"], alices.Select(i => i.Key));
        Assert.Equal(["<m>one</m>", "<m>two</m>", "<m>three</m>", "<m>own</m>"], alices.Select(i => i.Value));
        Assert.Equal(["a1", "a2", "a4"], (await archive.QueryAsync("alice", new ArchiveQuery { With = "bob@x" })).Select(i => i.Key));
        Assert.Equal(["<m>two</m>"], (await archive.QueryAsync("bob", new ArchiveQuery { Keys = ["k2", "a2"] })).Select(i => i.Value));
        Assert.Equal(2, await archive.CountAsync("bob", ArchiveQuery.All));

        Assert.Equal(2, await archive.DeleteOlderThanAsync(now.AddDays(-1)));
        Assert.Equal(2, await CountBodiesAsync());
        Assert.Equal(["<m>one</m>"], (await archive.TakeAsync("bob", new ArchiveQuery { Limit = 1 })).Select(i => i.Value));
        Assert.Equal(2, await CountBodiesAsync());
        Assert.Equal(3, await archive.DeleteAsync("alice"));
        Assert.Equal(1, await CountBodiesAsync());
        Assert.Equal(["<m>two</m>"], (await archive.QueryAsync("bob", ArchiveQuery.All)).Select(i => i.Value));
        await Storage.DeleteUserAsync("bob");
        Assert.Equal(0, await CountBodiesAsync());
        Assert.Equal(0, await archive.CountAsync("bob"));
    }

    [Fact]
    public async Task Items_of_one_batch_are_taken_expired_and_found_one_by_one_and_the_others_keep_their_ids()
    {
        var archive = Storage.OpenArchive("mam");
        var t0 = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
        var keys = Enumerable.Range(0, 6).Select(i => Candor.Server.Core.RandomIds.Uuid7(t0.AddMinutes(i))).ToList();
        await archive.AppendBatchAsync([
            .. keys.Select((key, i) => new ArchiveEntry("alice", key, t0.AddMinutes(i), i % 2 == 0 ? "bob@x" : "carol@x", "m" + i)),
            new ArchiveEntry("bob", "not-a-uuid", t0, "alice@x", "for bob"),
        ]);
        var before = await archive.QueryAsync("alice", ArchiveQuery.All);
        Assert.Equal(keys, before.Select(i => i.Key));

        Assert.Equal(["m3"], (await archive.QueryAsync("alice", new ArchiveQuery { Keys = [keys[3]] })).Select(i => i.Value));
        Assert.Equal(["for bob"], (await archive.QueryAsync("bob", new ArchiveQuery { Keys = ["not-a-uuid"] })).Select(i => i.Value));
        Assert.Equal(["m4", "m5"], (await archive.QueryAsync("alice", new ArchiveQuery { AfterId = before[3].Id })).Select(i => i.Value));
        Assert.Equal(["m5", "m3"], (await archive.QueryAsync("alice", new ArchiveQuery { With = "carol@x", Newest = true, Limit = 2 })).Select(i => i.Value));

        // One item out of the middle (as a moderator's retraction takes it), then the oldest two.
        Assert.Equal(["m2"], (await archive.TakeAsync("alice", new ArchiveQuery { AfterId = before[2].Id - 1, BeforeId = before[2].Id + 1 })).Select(i => i.Value));
        Assert.Equal(["m0", "m1"], (await archive.TakeAsync("alice", new ArchiveQuery { Limit = 2 })).Select(i => i.Value));
        Assert.Equal(before.Skip(3).Select(i => (i.Id, i.Value)), (await archive.QueryAsync("alice", ArchiveQuery.All)).Select(i => (i.Id, i.Value)));

        // Every account's items before the time: alice's m3 (her row keeps m4 and m5) and bob's one.
        Assert.Equal(2, await archive.DeleteOlderThanAsync(t0.AddMinutes(4)));
        Assert.Equal(["m4", "m5"], (await archive.QueryAsync("alice", ArchiveQuery.All)).Select(i => i.Value));
        Assert.Equal(2, await archive.CountAsync("alice"));
        Assert.Equal(1, await archive.CountAsync("alice", new ArchiveQuery { With = "carol@x" }));
        Assert.Equal(0, await archive.CountAsync("bob"));
    }

    [Fact]
    public async Task A_batch_of_thousands_of_items_for_one_account_keeps_them_all_in_order()
    {
        var archive = Storage.OpenArchive("mam");
        var t0 = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
        var entries = Enumerable.Range(0, 5000).Select(i => new ArchiveEntry("alice", "k" + i, t0.AddSeconds(i), "bob@x", "m" + i)).ToList();
        await archive.AppendBatchAsync(entries);
        var all = await archive.QueryAsync("alice", ArchiveQuery.All);
        Assert.Equal(entries.Select(e => e.Key), all.Select(i => i.Key));
        Assert.Equal(all.Select(i => i.Id).Order(), all.Select(i => i.Id));
        Assert.Equal(5000, await archive.CountAsync("alice"));
        Assert.Equal(["m4999", "m4998"], (await archive.QueryAsync("alice", new ArchiveQuery { Newest = true, Limit = 2 })).Select(i => i.Value));
        Assert.Equal(["m4096"], (await archive.QueryAsync("alice", new ArchiveQuery { AfterId = all[4095].Id, Limit = 1 })).Select(i => i.Value));
    }

    [Fact]
    public async Task Take_removes_what_it_returns_and_leaves_the_rest()
    {
        var archive = Storage.OpenArchive("offline");
        for (var i = 0; i < 5; i++) await archive.AppendAsync("alice", DateTimeOffset.UtcNow, "bob@x", "m" + i);
        var first = await archive.TakeAsync("alice", new ArchiveQuery { Limit = 2 });
        Assert.Equal(["m0", "m1"], first.Select(i => i.Value));
        Assert.Equal(3, await archive.CountAsync("alice"));
        var rest = await archive.TakeAsync("alice", ArchiveQuery.All);
        Assert.Equal(["m2", "m3", "m4"], rest.Select(i => i.Value));
        Assert.Empty(await archive.TakeAsync("alice", ArchiveQuery.All));
        Assert.Equal(0, await archive.CountAsync("alice"));
    }

    [Fact]
    public async Task Concurrent_takes_never_hand_out_an_item_twice_or_lose_one()
    {
        var archive = Storage.OpenArchive("offline");
        const int count = 200;
        var appending = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++) await archive.AppendAsync("alice", DateTimeOffset.UtcNow, "bob@x", "m" + i);
        });
        var taken = new System.Collections.Concurrent.ConcurrentBag<string>();
        var takers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!appending.IsCompleted || await archive.CountAsync("alice") > 0)
                foreach (var item in await archive.TakeAsync("alice", new ArchiveQuery { Limit = 7 }))
                    taken.Add(item.Value);
        })).ToArray();
        await appending;
        await Task.WhenAll(takers).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(count, taken.Count);
        Assert.Equal(count, taken.Distinct().Count());
    }

    [Fact]
    public async Task Deleting_a_user_removes_their_data_from_every_store_only()
    {
        await Storage.OpenKeyValue("kv").SetAsync("alice", "v");
        await Storage.OpenKeyValue("kv").SetAsync("bob", "v");
        await Storage.OpenMap("map").SetAsync("alice", "k", "v");
        await Storage.OpenArchive("arc").AppendAsync("alice", DateTimeOffset.UtcNow, "x", "v");
        await Storage.OpenArchive("arc").AppendAsync("bob", DateTimeOffset.UtcNow, "x", "v");

        await Storage.DeleteUserAsync("alice");

        Assert.Null(await Storage.OpenKeyValue("kv").GetAsync("alice"));
        Assert.Empty(await Storage.OpenMap("map").GetAllAsync("alice"));
        Assert.Equal(0, await Storage.OpenArchive("arc").CountAsync("alice"));
        Assert.Equal("v", await Storage.OpenKeyValue("kv").GetAsync("bob"));
        Assert.Equal(1, await Storage.OpenArchive("arc").CountAsync("bob"));
    }
}

public sealed class SqliteStorageConformanceTests : StorageConformanceTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-storage-").FullName;

    protected override Task<IStorage> CreateStorageAsync() => Task.FromResult<IStorage>(new SqliteStorage(Path.Combine(_directory, "candor.db")));
    protected override IRawRecords Raw => (IRawRecords)Storage;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Data_survives_reopening_the_file()
    {
        await Storage.OpenKeyValue("kv").SetAsync("alice", "kept");
        await Storage.DisposeAsync();
        await using var reopened = new SqliteStorage(Path.Combine(_directory, "candor.db"));
        Assert.Equal("kept", await reopened.OpenKeyValue("kv").GetAsync("alice"));
    }

    [Fact]
    public async Task A_batch_is_stored_as_one_row_per_account_and_a_damaged_row_is_an_error_not_other_items()
    {
        var archive = Storage.OpenArchive("mam");
        var now = DateTimeOffset.UtcNow;
        await archive.AppendBatchAsync([.. Enumerable.Range(0, 300).Select(i => new ArchiveEntry(i % 3 == 0 ? "alice" : "bob", "k" + i, now, "x@y", "v" + i))]);
        var path = Path.Combine(_directory, "candor.db");
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT user, n FROM archive ORDER BY user";
        var rows = new List<(string, long)>();
        using (var reader = command.ExecuteReader())
            while (reader.Read()) rows.Add((reader.GetString(0), reader.GetInt64(1)));
        Assert.Equal([("alice", 100L), ("bob", 200L)], rows);

        command.CommandText = "UPDATE archive SET items = substr(items, 1, 40) WHERE user = 'alice'";
        Assert.Equal(1, command.ExecuteNonQuery());
        var damaged = await Assert.ThrowsAsync<InvalidDataException>(() => archive.QueryAsync("alice", ArchiveQuery.All));
        Assert.Contains("damaged", damaged.Message);
        Assert.Equal(200, (await archive.QueryAsync("bob", ArchiveQuery.All)).Count);
    }

    [Fact]
    public async Task A_database_with_the_account_led_stanza_id_index_is_reindexed_and_finds_ids_through_the_new_one()
    {
        await Storage.DisposeAsync();
        var path = Path.Combine(_directory, "old.db");
        using (var old = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            old.Open();
            using var command = old.CreateCommand();
            command.CommandText = """
                CREATE TABLE keyval (store TEXT NOT NULL, user TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (store, user));
                CREATE TABLE map (store TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (store, user, key));
                CREATE TABLE archive (id INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL, user TEXT NOT NULL,
                    at INTEGER NOT NULL, with_jid TEXT NOT NULL, value TEXT NOT NULL, key TEXT, with_full TEXT);
                CREATE INDEX archive_by_user ON archive (store, user, id);
                CREATE INDEX archive_by_key ON archive (store, user, key) WHERE key IS NOT NULL;
                INSERT INTO archive (store, user, at, with_jid, value, key) VALUES ('mam', 'alice', 1, 'bob@x', 'old one', 'k1'), ('mam', 'bob', 1, 'alice@x', 'for bob', 'k2');
                PRAGMA user_version = 1;
                """;
            command.ExecuteNonQuery();
        }
        await using var storage = new SqliteStorage(path);
        var archive = storage.OpenArchive("mam");
        var body = new ArchiveBody("b4", "shared", refs: 2);
        await archive.AppendBatchAsync([
            new ArchiveEntry("alice", "k3", DateTimeOffset.UtcNow, "bob@x", "new one"),
            new ArchiveEntry("alice", "k4", DateTimeOffset.UtcNow, "bob@x", "shared") { Body = body },
            new ArchiveEntry("bob", "k5", DateTimeOffset.UtcNow, "alice@x", "shared") { Body = body },
        ]);
        Assert.Equal(["old one", "new one", "shared"], (await archive.QueryAsync("alice", new ArchiveQuery { Keys = ["k1", "k2", "k3", "k4"] })).Select(i => i.Value));
        Assert.Equal(["for bob", "shared"], (await archive.QueryAsync("bob", ArchiveQuery.All)).Select(i => i.Value));

        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var check = connection.CreateCommand();
        check.CommandText = "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'archive' AND sql IS NOT NULL ORDER BY name)";
        Assert.Equal("archive_by_stanza_id archive_by_user", check.ExecuteScalar());
        check.CommandText = "EXPLAIN QUERY PLAN SELECT id FROM archive WHERE +store = 'mam' AND +user = 'alice' AND key IN ('k1', 'k3') ORDER BY id";
        using var plan = check.ExecuteReader();
        var steps = new List<string>();
        while (plan.Read()) steps.Add(plan.GetString(3));
        Assert.Contains(steps, step => step.Contains("archive_by_stanza_id"));
    }
}

/// <summary>The same suite on PostgreSQL: a new database of the test process's private cluster for each test.</summary>
public sealed class PostgresStorageConformanceTests : StorageConformanceTests
{
    private string _connectionString = "";

    protected override async Task<IStorage> CreateStorageAsync()
    {
        _connectionString = await Harness.PostgresCluster.NewDatabaseAsync();
        return await PostgresStorage.OpenAsync(_connectionString);
    }

    protected override IRawRecords Raw => (IRawRecords)Storage;

    [Fact]
    public async Task A_version_3_database_gets_shared_archive_bodies_and_keeps_its_items()
    {
        await Storage.OpenArchive("mam").AppendBatchAsync([new ArchiveEntry("alice", "k1", DateTimeOffset.UtcNow, "bob@x", "old one")]);
        await Storage.DisposeAsync();
        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var downgrade = new NpgsqlCommand("ALTER TABLE archive DROP COLUMN body; DROP TABLE archive_body; UPDATE candor_schema SET version = 3;", connection);
            await downgrade.ExecuteNonQueryAsync();
        }
        await using var reopened = await PostgresStorage.OpenAsync(_connectionString);
        var archive = reopened.OpenArchive("mam");
        var body = new ArchiveBody("b2", "shared", refs: 2);
        await archive.AppendBatchAsync([
            new ArchiveEntry("alice", "k2", DateTimeOffset.UtcNow, "bob@x", "shared") { Body = body },
            new ArchiveEntry("bob", "k3", DateTimeOffset.UtcNow, "alice@x", "shared") { Body = body },
        ]);
        Assert.Equal(["old one", "shared"], (await archive.QueryAsync("alice", ArchiveQuery.All)).Select(i => i.Value));
        Assert.Equal(["shared"], (await archive.QueryAsync("bob", ArchiveQuery.All)).Select(i => i.Value));
    }

    [Fact]
    public async Task Data_survives_reopening_and_the_schema_is_made_once()
    {
        await Storage.OpenKeyValue("kv").SetAsync("alice", "kept");
        await Storage.OpenArchive("arc").AppendAsync("alice", DateTimeOffset.UtcNow, "x", "v");
        await Storage.DisposeAsync();
        var opening = Enumerable.Range(0, 3).Select(_ => PostgresStorage.OpenAsync(_connectionString)).ToList();
        foreach (var reopened in await Task.WhenAll(opening))
        {
            Assert.Equal("kept", await reopened.OpenKeyValue("kv").GetAsync("alice"));
            Assert.Equal(1, await reopened.OpenArchive("arc").CountAsync("alice"));
            await reopened.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_version_2_database_gets_the_stanza_id_led_index_instead_of_the_account_led_one()
    {
        await Storage.OpenArchive("mam").AppendBatchAsync([new ArchiveEntry("alice", "k1", DateTimeOffset.UtcNow, "bob@x", "kept")]);
        await Storage.DisposeAsync();
        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var downgrade = new NpgsqlCommand("""
                DROP INDEX archive_by_stanza_id;
                CREATE INDEX archive_by_key ON archive (store, account, key) WHERE key IS NOT NULL;
                UPDATE candor_schema SET version = 2;
                """, connection);
            await downgrade.ExecuteNonQueryAsync();
        }
        await using var reopened = await PostgresStorage.OpenAsync(_connectionString);
        Assert.Equal(["kept"], (await reopened.OpenArchive("mam").QueryAsync("alice", new ArchiveQuery { Keys = ["k1"] })).Select(i => i.Value));
        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var indexes = new NpgsqlCommand("SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'archive'", connection);
            Assert.Equal("archive_by_account archive_by_stanza_id archive_by_time archive_of_account archive_pkey", await indexes.ExecuteScalarAsync());
        }
    }
}
