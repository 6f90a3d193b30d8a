using Candor.Server.Accounts;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;
using Npgsql;

namespace Candor.Server.Tests;

/// <summary>The store semantics hold unchanged through the sealing layer on PostgreSQL.</summary>
public sealed class SealedPostgresStorageConformanceTests : StorageConformanceTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-sealed-pg-").FullName;
    private PostgresStorage _raw = null!;

    protected override async Task<IStorage> CreateStorageAsync()
    {
        var database = await PostgresCluster.NewDatabaseAsync();
        _raw = await PostgresStorage.OpenAsync(database);
        return await SealedStorage.OpenAsync(new ServerOptions { DataDirectory = _directory, Postgres = database });
    }

    protected override IRawRecords Raw => _raw;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _raw.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>Sealing on PostgreSQL: the first open seals what was stored in plaintext, a rotation re-seals every page of every table.</summary>
public sealed class PostgresSealingTests : IAsyncLifetime
{
    private const string Marker = "zebra-quartz-7731";
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-sealed-pg-").FullName;
    private ServerOptions _options = null!;

    public async Task InitializeAsync() => _options = new ServerOptions { DataDirectory = _directory, Postgres = await PostgresCluster.NewDatabaseAsync() };

    public Task DisposeAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>Every value column of every table, as the database holds it.</summary>
    private async Task<string> EverythingStoredAsync()
    {
        await using var connection = new NpgsqlConnection(_options.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT string_agg(account || value, '') FROM keyval UNION ALL SELECT string_agg(account || key || value, '') FROM map " +
            "UNION ALL SELECT string_agg(account || with_jid || value, '') FROM archive UNION ALL SELECT string_agg(key || value, '') FROM archive_body", connection);
        var all = new System.Text.StringBuilder();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) all.Append(reader.IsDBNull(0) ? "" : reader.GetString(0));
        return all.ToString();
    }

    [Fact]
    public async Task A_plaintext_database_is_sealed_on_first_open_and_a_rotation_reseals_every_record()
    {
        await using (var plain = await PostgresStorage.OpenAsync(_options.Postgres!))
        {
            await plain.OpenKeyValue("vcard").SetAsync(Marker + "-owner", $"<vCard><FN>{Marker}</FN></vCard>");
            await plain.OpenMap("roster").SetAsync(Marker + "-owner", $"{Marker}@example.org", Marker);
            for (var i = 0; i < 1200; i++)
                await plain.OpenArchive("offline").AppendAsync(Marker + "-owner", DateTimeOffset.UtcNow, $"{Marker}@example.org", $"{Marker} {i}");
            await new AccountStore(plain, 4096).CreateAsync("alice", "secret");
        }
        Assert.Contains(Marker, await EverythingStoredAsync());

        await using (var storage = await SealedStorage.OpenAsync(_options))
        {
            Assert.Equal(1203, storage.Migrated);
            Assert.DoesNotContain(Marker, await EverythingStoredAsync());
            Assert.True(await new AccountStore(storage, 4096).VerifyPasswordAsync("alice", "secret"));
            Assert.Equal(Marker, await storage.OpenMap("roster").GetAsync(Marker + "-owner", $"{Marker}@example.org"));
            // A message archived for both ends: one sealed body, re-sealed once by the rotation.
            var body = new ArchiveBody("body-1", $"<message><body>{Marker}</body></message>", refs: 2);
            await storage.OpenArchive("archive").AppendBatchAsync([
                new ArchiveEntry("alice", "a1", DateTimeOffset.UtcNow, "bob@x", body.Value) { Body = body },
                new ArchiveEntry("bob", "b1", DateTimeOffset.UtcNow, "alice@x", body.Value) { Body = body },
            ]);
            Assert.DoesNotContain(Marker, await EverythingStoredAsync());

            var (from, to, resealed) = await storage.RotateAsync(serverRunning: false, _ => { });
            Assert.NotEqual(from.Id, to.Id);
            Assert.Equal(1205, resealed);
            Assert.Equal(new Dictionary<uint, long> { [to.Id] = 1205 }, await storage.CountByKeyAsync());
        }

        await using var reopened = await SealedStorage.OpenAsync(_options);
        Assert.Equal(0, reopened.Migrated);
        var offline = await reopened.OpenArchive("offline").QueryAsync(Marker + "-owner", new ArchiveQuery { With = $"{Marker}@example.org" });
        Assert.Equal(Enumerable.Range(0, 1200).Select(i => $"{Marker} {i}"), offline.Select(i => i.Value));
        Assert.Contains(Marker, await reopened.OpenKeyValue("vcard").GetAsync(Marker + "-owner"));
        Assert.True(await new AccountStore(reopened, 4096).VerifyPasswordAsync("alice", "secret"));
        Assert.Contains(Marker, Assert.Single(await reopened.OpenArchive("archive").QueryAsync("bob", ArchiveQuery.All)).Value);
    }
}
