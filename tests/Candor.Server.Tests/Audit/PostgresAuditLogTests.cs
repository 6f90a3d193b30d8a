using Candor.Server.Audit;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Candor.Server.Tests.Audit;

/// <summary>
/// The operator log of a server on PostgreSQL (issue 18): kept in PostgreSQL beside the stores, with the same chain,
/// heads and verification as on SQLite, append-only in the database, its key outside it, appends from several
/// processes ordered, and a log an earlier version kept in DATA/audit.db taken over unchanged.
/// </summary>
public sealed class PostgresAuditLogTests
{
    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_server_on_postgres_keeps_its_log_there_served_verifiable_append_only_and_unsignable_without_the_key()
    {
        var database = await PostgresCluster.NewDatabaseAsync();
        await using var fixture = await ServerFixture.StartAsync(o =>
        {
            o.Postgres = database;
            o.HttpPort = 0;
        });
        var audit = fixture.Host.Server.Audit;
        Assert.Equal(AuditActions.ServerStarted, Assert.Single(audit.Read()).Action);
        Assert.Empty(Directory.EnumerateFiles(fixture.DataDirectory, "*.db*"));

        // The commands open the same log beside the server (a second opening, as `candor user ...` makes), at once.
        var options = fixture.Host.Server.Options;
        var other = AuditLog.Open(new ServerOptions { DataDirectory = fixture.DataDirectory, Postgres = database });
        await Task.WhenAll(Enumerable.Range(0, 2).Select(n => Task.Run(async () =>
        {
            for (var i = 0; i < 15; i++)
                await (n == 0 ? audit : other).AppendAsync(AuditEntry.Actors.Operator, AuditActions.AccountCreated, $"u{n}-{i}@localhost");
        })));
        await audit.AppendAsync(AuditEntry.Actors.Operator, AuditActions.PasswordSet, "u0-3@localhost");
        var head = other.SignHead();
        Assert.Equal(32, head.Size);
        Assert.Equal(Enumerable.Range(0, 32).Select(i => (long)i), audit.Read().Select(e => e.Index));
        Assert.Null(audit.Verify().Problem);
        Assert.Equal(AuditActions.PasswordSet, audit.LatestAbout("u0-3@localhost")?.Action);
        Assert.Equal(32, await ScalarAsync(database, "SELECT COUNT(*) FROM audit_log"));

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{fixture.Host.HttpPort}") };
        var served = TreeHead.Parse(await http.GetStringAsync(AuditEndpoints.Path));
        Assert.True(served.SignatureValid);
        Assert.Equal((head.Size, Convert.ToBase64String(head.Root)), (served.Size, Convert.ToBase64String(served.Root)));

        foreach (var sql in new[] { "UPDATE audit_log SET entry = 'x' WHERE idx = 1", "DELETE FROM audit_log WHERE idx = 1", "TRUNCATE audit_log" })
            Assert.Contains("append-only", (await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(database, sql))).MessageText);
        Assert.Equal(32, audit.Size);

        // The key is a file beside the master key, not in the database: the database alone verifies but signs nothing.
        var key = (await File.ReadAllTextAsync(AuditLog.KeyPathOf(options))).Trim();
        Assert.Equal(0, await ScalarAsync(database,
            $"SELECT COUNT(*) FROM (SELECT entry AS t FROM audit_log UNION ALL SELECT head FROM audit_head UNION ALL SELECT value FROM keyval UNION ALL SELECT value FROM map) x WHERE position('{key}' in t) > 0"));
        var elsewhere = Directory.CreateTempSubdirectory("candor-audit-nokey-").FullName;
        try
        {
            var stolen = AuditLog.Open(new ServerOptions { DataDirectory = elsewhere, Postgres = database });
            Assert.Null(stolen.Verify().Problem);
            Assert.Contains(head.KeyText, Assert.Throws<KeyException>(() => stolen.SignHead()).Message);
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task A_log_an_earlier_version_kept_in_audit_db_moves_into_postgres_unchanged_once()
    {
        var directory = Directory.CreateTempSubdirectory("candor-audit-legacy-").FullName;
        try
        {
            // What a server on PostgreSQL wrote before: its log in a SQLite file DATA/audit.db.
            var sqlite = AuditLog.Open(new ServerOptions { DataDirectory = directory });
            for (var i = 0; i < 5; i++) await sqlite.AppendAsync(AuditEntry.Actors.Operator, AuditActions.AccountCreated, $"old{i}@localhost");
            var seen = sqlite.SignHead();
            var before = sqlite.ReadRaw();
            SqliteConnection.ClearAllPools();
            File.Move(Path.Combine(directory, "candor.db"), Path.Combine(directory, "audit.db"));

            var options = new ServerOptions { DataDirectory = directory, Postgres = await PostgresCluster.NewDatabaseAsync() };
            var moved = AuditLog.Open(options);
            Assert.Equal(before, moved.ReadRaw());
            Assert.Equal(seen.ToJson(), moved.LatestHead!.ToJson());
            await moved.AppendAsync(AuditEntry.Actors.Operator, AuditActions.PasswordSet, "old1@localhost");
            var next = moved.SignHead();
            // A monitor that kept the head from before sees the log continue.
            var proof = MerkleTree.ConsistencyProof(moved.LeafHashes(next.Size), seen.Size, next.Size);
            Assert.True(MerkleTree.VerifyConsistency(seen.Size, next.Size, seen.Root, next.Root, proof));
            // Opened again (every command opens it): nothing is copied twice.
            Assert.Equal(6, AuditLog.Open(options).Size);
            Assert.Null(AuditLog.Open(options).Verify().Problem);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Nodes_given_the_master_key_as_a_setting_sign_the_shared_log_with_one_key_derived_from_it_and_keep_no_key_file()
    {
        var database = await PostgresCluster.NewDatabaseAsync();
        var masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var directories = new[] { Directory.CreateTempSubdirectory("candor-node-a-").FullName, Directory.CreateTempSubdirectory("candor-node-b-").FullName };
        try
        {
            var nodes = directories.Select(d => new ServerOptions { DataDirectory = d, Postgres = database, MasterKey = masterKey }).ToList();
            await AuditLog.RecordAsync(nodes[0], AuditActions.AccountCreated, "ann@localhost");
            await AuditLog.RecordAsync(nodes[1], AuditActions.AccountCreated, "bob@localhost");
            var heads = AuditLog.Open(nodes[0]).Snapshot().Where(s => s.Head is not null).Select(s => s.Head!).ToList();
            Assert.Equal([1L, 2L], heads.Select(h => h.Size));
            Assert.Single(heads.Select(h => h.KeyText).Distinct());
            Assert.All(heads, h => Assert.True(h.SignatureValid));
            Assert.All(nodes, n => Assert.False(File.Exists(AuditLog.KeyPathOf(n))));
            // Another master key is another log key: refused over heads it did not sign.
            var stranger = new ServerOptions { DataDirectory = directories[0], Postgres = database, MasterKey = Convert.ToBase64String(new byte[32]) };
            Assert.Contains(heads[0].KeyText, Assert.Throws<KeyException>(() => AuditLog.Open(stranger).SignHead()).Message);
        }
        finally
        {
            foreach (var d in directories) Directory.Delete(d, recursive: true);
        }
    }
}
