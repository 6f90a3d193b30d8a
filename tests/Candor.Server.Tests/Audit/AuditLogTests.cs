using System.Text;
using System.Text.Json;
using Candor.Server.Audit;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;
using Microsoft.Data.Sqlite;

namespace Candor.Server.Tests.Audit;

/// <summary>
/// The operator log of a running server as an outsider sees it over HTTP (signed head, inclusion and consistency
/// proofs that verify), and what the database alone allows: no key in it, no new head from a copy, no edits.
/// </summary>
public sealed class AuditLogTests
{
    private static async Task<JsonElement> GetAsync(HttpClient http, string url)
    {
        var response = await http.GetAsync(url);
        Assert.True(response.IsSuccessStatusCode, $"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    private static List<byte[]> Hashes(JsonElement array) => [.. array.EnumerateArray().Select(h => Convert.FromBase64String(h.GetString()!))];

    [Fact]
    public async Task An_outsider_gets_a_signed_head_entries_that_are_proven_in_it_and_proof_that_the_log_only_grew()
    {
        await using var fixture = await ServerFixture.StartAsync(o => o.HttpPort = 0);
        var audit = fixture.Host.Server.Audit;
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{fixture.Host.HttpPort}") };

        // The start is logged, with the published policy's digest, and signed at once.
        var first = TreeHead.Parse((await GetAsync(http, AuditEndpoints.Path)).GetRawText());
        Assert.True(first.SignatureValid);
        Assert.Equal(1, first.Size);
        var start = Assert.Single(audit.Read());
        Assert.Equal(AuditActions.ServerStarted, start.Action);
        Assert.Equal(fixture.Host.Server.Policy.Current.Published.Digest, start.Details["policy_sha256"]);

        for (var i = 0; i < 6; i++)
            await audit.AppendAsync(AuditEntry.Actors.Operator, AuditActions.AccountCreated, $"u{i}@localhost");
        // Not served before a head covers them.
        Assert.Equal(1, TreeHead.Parse((await GetAsync(http, AuditEndpoints.Path)).GetRawText()).Size);
        audit.SignHeadIfGrown();
        var head = TreeHead.Parse((await GetAsync(http, AuditEndpoints.Path)).GetRawText());
        Assert.True(head.SignatureValid);
        Assert.Equal(7, head.Size);
        Assert.Equal(first.KeyText, head.KeyText);

        var listing = await GetAsync(http, $"{AuditEndpoints.Path}/entries?start=0&end=6");
        var leaves = new List<byte[]>();
        foreach (var item in listing.GetProperty("entries").EnumerateArray())
        {
            var entry = AuditEntry.Parse(item.GetProperty("entry"));
            Assert.Equal(Convert.ToBase64String(entry.LeafHash), item.GetProperty("entry").GetProperty("leaf_hash").GetString());
            Assert.True(MerkleTree.VerifyInclusion(entry.Index, head.Size, entry.LeafHash, Hashes(item.GetProperty("inclusion_proof")), head.Root),
                $"entry {entry.Index}");
            leaves.Add(entry.LeafHash);
        }
        Assert.Equal(7, leaves.Count);

        var consistency = await GetAsync(http, $"{AuditEndpoints.Path}/consistency?from=1&to=7");
        Assert.True(MerkleTree.VerifyConsistency(1, 7, first.Root, head.Root, Hashes(consistency.GetProperty("proof"))));
        // A head of size 1 with another history does not fit the proof.
        Assert.False(MerkleTree.VerifyConsistency(1, 7, leaves[1], head.Root, Hashes(consistency.GetProperty("proof"))));

        foreach (var bad in new[] { "/consistency?from=3&to=8", "/consistency?from=5&to=2", "/consistency?from=x&to=2", "/entries?start=7&end=7", "/entries?start=-1&end=2" })
            Assert.Equal(400, (int)(await http.GetAsync(AuditEndpoints.Path + bad)).StatusCode);
    }

    [Fact]
    public async Task A_start_whose_privacy_settings_changed_logs_each_change_before_the_start()
    {
        var archiveDefault = "never";
        await using var fixture = await ServerFixture.StartAsync(o => o.ArchiveDefault = archiveDefault);
        await fixture.RestartAsync();
        archiveDefault = "always";
        await fixture.RestartAsync();

        var entries = fixture.Host.Server.Audit.Read();
        Assert.Equal([AuditActions.ServerStarted, AuditActions.ServerStopped, AuditActions.ServerStarted, AuditActions.ServerStopped,
            AuditActions.ConfigurationChanged, AuditActions.ServerStarted], entries.Select(e => e.Action));
        var change = entries[4];
        Assert.Equal(AuditEntry.Actors.Server, change.Actor);
        // The published policy states the archive default, so its digest changed with it; nothing else did.
        Assert.Equal(["archive_default", "policy_sha256"], change.Details.Keys.Order());
        Assert.Equal("never -> always", change.Details["archive_default"]);
        Assert.Equal($"{entries[2].Details["policy_sha256"]} -> {entries[5].Details["policy_sha256"]}", change.Details["policy_sha256"]);
    }

    [Fact]
    public async Task A_user_asks_what_the_operator_did_with_the_account_and_gets_entries_with_proofs_that_verify()
    {
        await using var fixture = await ServerFixture.StartAsync();
        var audit = fixture.Host.Server.Audit;
        var user = await fixture.CreateUserAsync("ida");
        await audit.AppendAsync(AuditEntry.Actors.Operator, AuditActions.PasswordSet, $"{user}@localhost");
        await audit.AppendAsync(AuditEntry.Actors.Operator, AuditActions.AccountCreated, "someone-else@localhost");
        await audit.AppendAsync(AuditEntry.Actors.Operator, AuditActions.ArchivePurged, $"{user}@localhost");
        var head = audit.SignHead();

        await using var client = await fixture.ClientAsync(user, "desk");
        var items = await client.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>");
        Assert.Contains(items.GetChild("query", Ns.DiscoItems)!.Elements, i => i.GetAttribute("node") == "operator-log");
        var result = await client.IqAsync("<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='operator-log' action='execute'/></iq>");
        var command = result.GetChild("command", "http://jabber.org/protocol/commands")!;
        Assert.Equal("completed", command.GetAttribute("status"));
        var note = command.GetChild("note", "http://jabber.org/protocol/commands")!.Text;
        Assert.DoesNotContain("someone-else", note);
        var entries = audit.Read().Where(e => e.Account == $"{user}@localhost").ToList();
        Assert.Equal(2, entries.Count);
        foreach (var entry in entries)
        {
            var line = note.Split('\n').Single(l => l.Contains("leaf " + Convert.ToBase64String(entry.LeafHash)));
            var proof = line[(line.IndexOf(": ", StringComparison.Ordinal) + 2)..].Split(' ').Select(Convert.FromBase64String).ToList();
            Assert.True(MerkleTree.VerifyInclusion(entry.Index, head.Size, entry.LeafHash, proof, head.Root), line);
        }
        Assert.Contains(Convert.ToBase64String(head.Signature), note);
    }

    [Fact]
    public async Task The_signing_key_is_not_in_the_database_and_a_copy_of_it_signs_nothing()
    {
        var directory = Directory.CreateTempSubdirectory("candor-audit-").FullName;
        var copy = Directory.CreateTempSubdirectory("candor-audit-copy-").FullName;
        try
        {
            var options = new ServerOptions { DataDirectory = directory };
            var log = AuditLog.Open(options);
            await log.AppendAsync(AuditEntry.Actors.Operator, AuditActions.AccountCreated, "alice@localhost");
            var head = log.SignHead();
            SqliteConnection.ClearAllPools();

            var keyText = File.ReadAllText(AuditLog.KeyPathOf(options)).Trim();
            Assert.StartsWith(Path.Combine(directory, "keys"), AuditLog.KeyPathOf(options));
            var keyBytes = Convert.FromBase64String(keyText);
            foreach (var file in Directory.EnumerateFiles(directory, "candor.db*"))
            {
                var bytes = File.ReadAllBytes(file);
                Assert.Equal(-1, bytes.AsSpan().IndexOf(keyBytes));
                Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(keyText)));
            }

            // Someone with the database only: the log still verifies, but no new head can be signed, by anyone.
            foreach (var file in Directory.EnumerateFiles(directory, "candor.db*"))
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            var stolen = AuditLog.Open(new ServerOptions { DataDirectory = copy });
            Assert.Null(stolen.Verify().Problem);
            await stolen.AppendAsync(AuditEntry.Actors.Operator, AuditActions.AccountRemoved, "alice@localhost");
            var refused = Assert.Throws<KeyException>(() => stolen.SignHead());
            Assert.Contains(head.KeyText, refused.Message);
            Assert.False(File.Exists(AuditLog.KeyPathOf(new ServerOptions { DataDirectory = copy })));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public async Task The_database_refuses_to_change_or_delete_an_entry()
    {
        var directory = Directory.CreateTempSubdirectory("candor-audit-").FullName;
        try
        {
            var log = AuditLog.Open(new ServerOptions { DataDirectory = directory });
            await log.AppendAsync(AuditEntry.Actors.Operator, AuditActions.AccountCreated, "alice@localhost");
            await using var connection = new SqliteConnection($"Data Source={Path.Combine(directory, "candor.db")}");
            connection.Open();
            foreach (var sql in new[] { "UPDATE audit_log SET entry = 'x'", "DELETE FROM audit_log" })
            {
                using var command = connection.CreateCommand();
                command.CommandText = sql;
                Assert.Contains("append-only", Assert.Throws<SqliteException>(() => command.ExecuteNonQuery()).Message);
            }
            Assert.Single(log.Read());
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }
}
