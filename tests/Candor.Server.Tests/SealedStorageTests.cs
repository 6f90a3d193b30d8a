using System.Text;
using Candor.Server.Accounts;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Tests;

/// <summary>The store semantics hold unchanged through the sealing layer.</summary>
public sealed class SealedStorageConformanceTests : StorageConformanceTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-sealed-").FullName;

    protected override async Task<IStorage> CreateStorageAsync() => await SealedStorage.OpenAsync(new ServerOptions { DataDirectory = _directory });
    protected override IRawRecords Raw => new SqliteStorage(Path.Combine(_directory, SqliteStorage.FileName));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>
/// Promise 4 at the store layer: what a copy of the data directory shows, what a wrong key or a moved record
/// gets, the migration of plaintext databases and key rotation (interrupted too).
/// </summary>
public sealed class SealedStorageTests : IDisposable
{
    private const string Marker = "zebra-quartz-7731";
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-sealed-").FullName;

    private ServerOptions Options => new() { DataDirectory = _directory };
    private string Database => Path.Combine(_directory, "candor.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private Task<SealedStorage> OpenAsync(ServerOptions? options = null) => SealedStorage.OpenAsync(options ?? Options);

    /// <summary>Every file under the data directory, as bytes, concatenated: what a thief copies.</summary>
    private string EverythingOnDisk() =>
        string.Concat(Directory.EnumerateFiles(_directory, "*", SearchOption.AllDirectories).Select(f => Encoding.UTF8.GetString(File.ReadAllBytes(f))));

    private static async Task WriteEveryShapeAsync(IStorage storage, string user)
    {
        await storage.OpenKeyValue("vcard").SetAsync(user, $"<vCard xmlns='vcard-temp'><FN>{Marker}</FN></vCard>");
        await storage.OpenMap("roster").SetAsync(user, $"{Marker}-contact@example.org", $"{{\"name\":\"{Marker}\"}}");
        await storage.OpenArchive("offline").AppendAsync(user, DateTimeOffset.UtcNow, $"{Marker}-sender@example.org", $"<message><body>{Marker}</body></message>");
    }

    private static async Task AssertEveryShapeReadsBackAsync(IStorage storage, string user)
    {
        Assert.Contains(Marker, await storage.OpenKeyValue("vcard").GetAsync(user));
        var roster = await storage.OpenMap("roster").GetAllAsync(user);
        Assert.Contains(Marker, Assert.Single(roster, i => i.Key == $"{Marker}-contact@example.org").Value);
        var offline = Assert.Single(await storage.OpenArchive("offline").QueryAsync(user, new ArchiveQuery { With = $"{Marker}-sender@example.org" }));
        Assert.Contains(Marker, offline.Value);
    }

    [Fact]
    public async Task The_files_show_no_value_account_name_map_key_or_with_and_the_owner_reads_everything_back()
    {
        await using (var storage = await OpenAsync())
        {
            await WriteEveryShapeAsync(storage, Marker + "-owner");
            await new AccountStore(storage, 4096).CreateAsync(Marker + "-account", "pw");
        }
        SqliteConnection.ClearAllPools();

        Assert.DoesNotContain(Marker, EverythingOnDisk());

        await using var reopened = await OpenAsync();
        await AssertEveryShapeReadsBackAsync(reopened, Marker + "-owner");
        Assert.Contains(Marker + "-account", await new AccountStore(reopened, 4096).ListAsync());
        Assert.True(await new AccountStore(reopened, 4096).VerifyPasswordAsync(Marker + "-account", "pw"));
    }

    [Fact]
    public async Task The_key_file_is_made_on_first_open_readable_by_its_owner_only()
    {
        await (await OpenAsync()).DisposeAsync();
        var keyFile = Path.Combine(_directory, "keys", "master.key");
        Assert.True(File.Exists(keyFile));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(keyFile)!));
        }
        Assert.Equal(32, Convert.FromBase64String(File.ReadAllText(keyFile)).Length);
    }

    [Fact]
    public async Task A_wrong_or_missing_key_is_refused_instead_of_serving_empty_data()
    {
        await using (var storage = await OpenAsync()) await WriteEveryShapeAsync(storage, "alice");
        var keyFile = Path.Combine(_directory, "keys", "master.key");
        var rightKey = File.ReadAllText(keyFile);

        var other = Options;
        other.MasterKey = Convert.ToBase64String(new byte[32]);
        var wrong = await Assert.ThrowsAsync<KeyException>(() => OpenAsync(other));
        Assert.StartsWith("wrong master key", wrong.Message);

        File.Delete(keyFile);
        var missing = await Assert.ThrowsAsync<KeyException>(() => OpenAsync());
        Assert.StartsWith("no master key", missing.Message);
        Assert.False(File.Exists(keyFile), "a missing key must not be replaced by a new one over sealed data");

        var fromSetting = Options;
        fromSetting.MasterKey = rightKey.Trim();
        await using var storage2 = await OpenAsync(fromSetting);
        await AssertEveryShapeReadsBackAsync(storage2, "alice");
    }

    [Fact]
    public async Task A_record_moved_to_another_account_store_or_key_fails_to_open_and_is_reported_not_served()
    {
        var reports = new ReportLogger();
        await using var storage = await OpenAsync();
        storage.Log = reports;
        await WriteEveryShapeAsync(storage, "alice");
        await storage.OpenKeyValue("vcard").SetAsync("bob", "<vCard xmlns='vcard-temp'><FN>bob</FN></vCard>");
        await storage.OpenKeyValue("private").SetAsync("alice", "<x/>");
        await storage.OpenArchive("offline").AppendAsync("bob", DateTimeOffset.UtcNow, "carol@example.org", "<message><body>for bob</body></message>");
        await storage.OpenMap("roster").SetAsync("alice", "dave@example.org", "{\"name\":\"dave\"}");

        // Whoever can write the database copies alice's sealed records over bob's and into other places.
        var (alice, bob) = (storage.Hash("alice"), storage.Hash("bob"));
        Execute($"UPDATE keyval SET value = (SELECT value FROM keyval WHERE store = 'vcard' AND user = '{alice}') WHERE store = 'vcard' AND user = '{bob}'");
        Execute($"UPDATE keyval SET value = (SELECT value FROM keyval WHERE store = 'vcard' AND user = '{alice}') WHERE store = 'private' AND user = '{alice}'");
        Execute($"INSERT INTO archive (store, user, at, with_jid, value) SELECT store, '{bob}', at, with_jid, value FROM archive WHERE store = 'offline' AND user = '{alice}'");
        var dave = storage.Hash(alice, "dave@example.org");
        Execute($"UPDATE map SET value = (SELECT value FROM map WHERE store = 'roster' AND user = '{alice}' AND key <> '{dave}') WHERE key = '{dave}'");

        var moved = await Assert.ThrowsAsync<SealedRecordException>(() => storage.OpenKeyValue("vcard").GetAsync("bob"));
        Assert.Contains("store 'vcard'", moved.Message);
        await Assert.ThrowsAsync<SealedRecordException>(() => storage.OpenKeyValue("private").GetAsync("alice"));
        var bobsOffline = await storage.OpenArchive("offline").QueryAsync("bob", ArchiveQuery.All);
        Assert.Equal(["<message><body>for bob</body></message>"], bobsOffline.Select(i => i.Value));
        var roster = await storage.OpenMap("roster").GetAllAsync("alice");
        Assert.Equal([$"{Marker}-contact@example.org"], roster.Keys);

        Assert.Equal(4, reports.Errors.Count);
        Assert.All(reports.Errors, e => Assert.Contains("does not open", e));
        // alice's own records still open where they belong.
        await AssertEveryShapeReadsBackAsync(storage, "alice");
    }

    [Fact]
    public async Task A_plaintext_database_of_an_earlier_version_is_sealed_on_first_open_leaving_no_plaintext()
    {
        await using (var plain = new SqliteStorage(Database))
        {
            await WriteEveryShapeAsync(plain, Marker + "-owner");
            await new AccountStore(plain, 4096).CreateAsync(Marker + "-account", "secret");
            await plain.OpenKeyValue("roster-version").SetAsync(Marker + "-owner", "7");
        }
        SqliteConnection.ClearAllPools();
        Assert.Contains(Marker, EverythingOnDisk());

        await using (var storage = await OpenAsync())
        {
            Assert.Equal(5, storage.Migrated);
            await AssertEveryShapeReadsBackAsync(storage, Marker + "-owner");
            Assert.Equal("7", await storage.OpenKeyValue("roster-version").GetAsync(Marker + "-owner"));
            Assert.True(await new AccountStore(storage, 4096).VerifyPasswordAsync(Marker + "-account", "secret"));
            var counts = await storage.CountByKeyAsync();
            Assert.Equal(6, counts[storage.Keys.Current.Id]);
            Assert.Single(counts);
        }
        SqliteConnection.ClearAllPools();
        Assert.DoesNotContain(Marker, EverythingOnDisk());

        await using var again = await OpenAsync();
        Assert.Equal(0, again.Migrated);
        await AssertEveryShapeReadsBackAsync(again, Marker + "-owner");
    }

    [Fact]
    public async Task An_archive_entry_sealed_when_queued_and_stored_after_the_rotations_resealing_is_sealed_with_the_new_key()
    {
        await using var storage = await OpenAsync();
        var archive = (IPreparingArchiveStore)storage.OpenArchive("archive");
        var queued = archive.Prepare(new ArchiveEntry("alice", "late", DateTimeOffset.UtcNow, "bob@x", $"<message><body>{Marker}</body></message>"));

        var next = storage.Files.BeginRotation(storage.Keys);
        Assert.Equal(1, await storage.ResealAsync()); // the index key record
        await archive.AppendPreparedAsync([queued]);
        storage.Files.FinishRotation(storage.Keys);

        Assert.Equal(new Dictionary<uint, long> { [next.Id] = 2 }, await storage.CountByKeyAsync());
        var item = Assert.Single(await archive.QueryAsync("alice", ArchiveQuery.All));
        Assert.Equal("late", item.Key);
        Assert.Contains(Marker, item.Value);
    }

    [Fact]
    public async Task A_shared_archive_body_is_sealed_once_counted_resealed_by_rotation_and_an_item_moved_or_repointed_is_not_served()
    {
        var reports = new ReportLogger();
        await using var storage = await OpenAsync();
        storage.Log = reports;
        var archive = storage.OpenArchive("archive");
        var now = DateTimeOffset.UtcNow;
        // As the archive module gives it: the serialized stanza, sealed from its UTF-8 and stored as the record's bytes.
        var body = new ArchiveBody("body-1", Encoding.UTF8.GetBytes($"<message><body>{Marker}</body></message>"), refs: 2);
        var other = new ArchiveBody("body-2", "<message><body>to dave</body></message>", refs: 2);
        await archive.AppendBatchAsync([
            new ArchiveEntry("alice", "a1", now, "bob@x", "") { Body = body },
            new ArchiveEntry("bob", "b1", now, "alice@x", "") { Body = body },
            new ArchiveEntry("alice", "a2", now, "dave@x", other.Value) { Body = other },
            new ArchiveEntry("dave", "d2", now, "alice@x", other.Value) { Body = other },
        ]);
        // The index key record and the bodies, sealed once and stored with each of the four items (SQLite packs an
        // account's items of a batch into one row, each with its copy): the items hold bindings, not sealed records.
        Assert.Equal(new Dictionary<uint, long> { [storage.Keys.Current.Id] = 5 }, await storage.CountByKeyAsync());
        var (row, _) = PackedRow(storage.Hash("bob"));
        var record = Convert.FromBase64String(Assert.Single(SqliteArchiveChunk.Decode(row)).BodyValue!);
        Assert.True(row.AsSpan().IndexOf(record) > 0);
        Assert.True(row.AsSpan().IndexOf(Encoding.ASCII.GetBytes(Convert.ToBase64String(record))) < 0);
        var (_, to, resealed) = await storage.RotateAsync(serverRunning: false, _ => { });
        Assert.Equal(5, resealed);
        Assert.Equal(new Dictionary<uint, long> { [to.Id] = 5 }, await storage.CountByKeyAsync());
        Assert.Contains(Marker, Assert.Single(await archive.QueryAsync("bob", ArchiveQuery.All)).Value);
        Assert.Equal(["a1", "a2"], (await archive.QueryAsync("alice", ArchiveQuery.All)).Select(i => i.Key));

        // Whoever can write the database moves bob's item to carol, and points alice's item with dave at the other body.
        var (bob, carol) = (storage.Hash("bob"), storage.Hash("carol"));
        Execute($"UPDATE archive SET user = '{carol}' WHERE user = '{bob}'");
        RepointBody(storage.Hash("alice"), from: "a1", to: "a2");
        Assert.Empty(await archive.QueryAsync("carol", ArchiveQuery.All));
        Assert.Equal(["a1"], (await archive.QueryAsync("alice", ArchiveQuery.All)).Select(i => i.Key));
        Assert.Equal(2, reports.Errors.Count);
        Assert.All(reports.Errors, e => Assert.Contains("bound to another account, correspondent or body", e));
        Assert.Contains("to dave", Assert.Single(await archive.QueryAsync("dave", ArchiveQuery.All)).Value);
    }

    [Fact]
    public async Task Rotation_reseals_everything_under_a_new_key_and_the_old_key_opens_nothing_afterwards()
    {
        var keyFile = Path.Combine(_directory, "keys", "master.key");
        string oldKey;
        await using (var storage = await OpenAsync())
        {
            oldKey = File.ReadAllText(keyFile).Trim();
            for (var i = 0; i < 1200; i++) await storage.OpenArchive("offline").AppendAsync("alice", DateTimeOffset.UtcNow, "bob@x", "m" + i);
            await WriteEveryShapeAsync(storage, "carol");
            var old = storage.Keys.Current;

            var (from, to, resealed) = await storage.RotateAsync(serverRunning: false, _ => { });
            Assert.Equal(old, from);
            Assert.NotEqual(old.Id, to.Id);
            Assert.Equal(1204, resealed);
            Assert.Equal(new Dictionary<uint, long> { [to.Id] = 1204 }, await storage.CountByKeyAsync());
            Assert.Single(storage.Keys.All);
        }
        Assert.NotEqual(oldKey, File.ReadAllText(keyFile).Trim());
        Assert.False(File.Exists(keyFile + ".next"));

        await using (var reopened = await OpenAsync())
        {
            Assert.Equal(1200, (await reopened.OpenArchive("offline").QueryAsync("alice", ArchiveQuery.All)).Count);
            await AssertEveryShapeReadsBackAsync(reopened, "carol");
        }
        var withOldKey = Options;
        withOldKey.MasterKey = oldKey;
        await Assert.ThrowsAsync<KeyException>(() => OpenAsync(withOldKey));
    }

    [Fact]
    public async Task A_rotation_interrupted_after_writing_the_new_key_loses_nothing_and_finishes_when_run_again()
    {
        uint next;
        await using (var storage = await OpenAsync())
        {
            await WriteEveryShapeAsync(storage, "alice");
            // The process dies right after writing master.key.next and re-sealing part of the data.
            next = storage.Files.BeginRotation(storage.Keys).Id;
            await storage.OpenArchive("offline").AppendAsync("alice", DateTimeOffset.UtcNow, "later@example.org", "after");
        }
        await using (var restarted = await OpenAsync())
        {
            Assert.Equal(2, restarted.Keys.All.Count);
            Assert.Equal(next, restarted.Keys.Current.Id);
            await AssertEveryShapeReadsBackAsync(restarted, "alice");
            Assert.Equal("after", Assert.Single(await restarted.OpenArchive("offline").QueryAsync("alice", new ArchiveQuery { With = "later@example.org" })).Value);
            var (_, to, _) = await restarted.RotateAsync(serverRunning: false, _ => { });
            Assert.Equal(next, to.Id);
            Assert.Equal([next], (await restarted.CountByKeyAsync()).Keys);
        }
        await using var finished = await OpenAsync();
        Assert.Single(finished.Keys.All);
        await AssertEveryShapeReadsBackAsync(finished, "alice");
    }

    /// <summary>The account's packed archive row (there is one) and its id.</summary>
    private (byte[] Items, long Id) PackedRow(string hashedUser)
    {
        using var connection = new SqliteConnection($"Data Source={Database}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT id, items FROM archive WHERE user = '{hashedUser}' AND items IS NOT NULL";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        return ((byte[])reader.GetValue(1), reader.GetInt64(0));
    }

    /// <summary>In the account's packed archive row, gives item <paramref name="to"/> the body of item <paramref name="from"/>.</summary>
    private void RepointBody(string hashedUser, string from, string to)
    {
        var (packed, row) = PackedRow(hashedUser);
        var items = SqliteArchiveChunk.Decode(packed);
        using var connection = new SqliteConnection($"Data Source={Database}");
        connection.Open();
        using var command = connection.CreateCommand();
        var source = items.Single(item => item.Key == from);
        var target = items.FindIndex(item => item.Key == to);
        items[target] = items[target] with { BodyKey = source.BodyKey, BodyValue = source.BodyValue };
        command.CommandText = "UPDATE archive SET items = $items WHERE id = $row";
        command.Parameters.AddWithValue("$items", SqliteArchiveChunk.Encode(items));
        command.Parameters.AddWithValue("$row", row);
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    private void Execute(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Database}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    private sealed class ReportLogger : ILogger
    {
        public List<string> Errors { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Error) lock (Errors) Errors.Add(formatter(state, exception));
        }
    }
}
