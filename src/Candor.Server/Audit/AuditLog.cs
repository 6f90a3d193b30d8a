using System.Text;
using System.Text.Json;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Microsoft.Data.Sqlite;
using NSec.Cryptography;

namespace Candor.Server.Audit;

/// <summary>
/// Promise 6, the operator log (issue 18): an append-only list of <see cref="AuditEntry"/> in the server's SQLite
/// database (tables audit_log and audit_head; triggers refuse updates and deletes), the Merkle tree of RFC 9162 over
/// it, and tree heads signed with the log key, an Ed25519 key kept beside the master key (DATA/keys/audit.key) and
/// never in the database. Each append is one SQLite transaction, so a crash leaves the log with or without the
/// entry, never half of it; a head is signed over entries already committed. The server and the
/// <c>candor ...</c> commands append to the same database at once; BEGIN IMMEDIATE orders them.
/// The log is public (served over HTTP): entries name accounts but hold no password, key or content.
/// </summary>
public sealed class AuditLog
{
    private readonly string _connectionString;
    private readonly string _keyPath;
    private Key? _key;

    private AuditLog(string database, string keyPath)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true }.ToString();
        _keyPath = keyPath;
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            CREATE TABLE IF NOT EXISTS audit_log (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS audit_head (size INTEGER PRIMARY KEY, head TEXT NOT NULL);
            CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            """;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// The log in the data directory's database, signed with the key beside the master key file. With PostgreSQL
    /// storage the log is not in PostgreSQL yet: it stays a SQLite file of its own in the data directory.
    /// </summary>
    public static AuditLog Open(ServerOptions options) =>
        new(Path.Combine(options.DataDirectory, options.Postgres is null ? "candor.db" : "audit.db"), KeyPathOf(options));

    public static string KeyPathOf(ServerOptions options) =>
        Path.Combine(Path.GetDirectoryName(new KeyFiles(options).KeyPath)!, "audit.key");

    /// <summary>
    /// What an operator command does once it has done its work: one entry, and a head over it signed now (the
    /// command may run while no server does, and nobody else would sign it).
    /// </summary>
    public static async Task<long> RecordAsync(ServerOptions options, string action, string? account, IReadOnlyDictionary<string, string>? details = null)
    {
        var log = Open(options);
        var index = await log.AppendAsync(AuditEntry.Actors.Operator, action, account, details);
        log.SignHead();
        return index;
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    /// <summary>Appends an entry; returns its index.</summary>
    public Task<long> AppendAsync(string actor, string action, string? account, IReadOnlyDictionary<string, string>? details = null)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log";
        var index = Convert.ToInt64(command.ExecuteScalar());
        var entry = new AuditEntry(index, DateTimeOffset.UtcNow, actor, action, account, details ?? new Dictionary<string, string>());
        command.CommandText = "INSERT INTO audit_log (idx, entry) VALUES ($idx, $entry)";
        command.Parameters.AddWithValue("$idx", index);
        command.Parameters.AddWithValue("$entry", Encoding.UTF8.GetString(entry.ToBytes()));
        command.ExecuteNonQuery();
        transaction.Commit();
        return Task.FromResult(index);
    }

    /// <summary>
    /// After a restore from a backup older than the log that monitors have seen: puts back the entries made since the
    /// backup, from an export of the newer log that the caller has verified, so that the log grows on instead of rolling
    /// back. Null when done, else why not (the backup's log is not the start of the export's).
    /// </summary>
    public string? Continue(IReadOnlyList<AuditEntry> exported, TreeHead head)
    {
        var stored = LeafHashes();
        if (stored.Count > exported.Count)
            return $"the restored log has {stored.Count} entries, the export only {exported.Count}: the export is older than the backup";
        for (var i = 0; i < stored.Count; i++)
            if (!stored[i].AsSpan().SequenceEqual(exported[i].LeafHash))
                return $"entry {i} of the restored log differs from the export's: they are not the same log";
        using var connection = Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO audit_log (idx, entry) VALUES ($idx, $entry)";
        var index = command.Parameters.Add("$idx", SqliteType.Integer);
        var text = command.Parameters.Add("$entry", SqliteType.Text);
        foreach (var entry in exported.Skip(stored.Count))
        {
            index.Value = entry.Index;
            text.Value = Encoding.UTF8.GetString(entry.ToBytes());
            command.ExecuteNonQuery();
        }
        command.Parameters.Clear();
        command.CommandText = "INSERT INTO audit_head (size, head) VALUES ($size, $head) ON CONFLICT (size) DO UPDATE SET head = excluded.head";
        command.Parameters.AddWithValue("$size", head.Size);
        command.Parameters.AddWithValue("$head", head.ToJson());
        command.ExecuteNonQuery();
        transaction.Commit();
        return null;
    }

    public long Size
    {
        get
        {
            using var connection = Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM audit_log";
            return Convert.ToInt64(command.ExecuteScalar());
        }
    }

    /// <summary>Entries <paramref name="start"/> to <paramref name="end"/> (exclusive) as stored, with their index in the table.</summary>
    public IReadOnlyList<(long Index, string Text)> ReadRaw(long start = 0, long end = long.MaxValue)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT idx, entry FROM audit_log WHERE idx >= $start AND idx < $end ORDER BY idx";
        command.Parameters.AddWithValue("$start", start);
        command.Parameters.AddWithValue("$end", end);
        var rows = new List<(long, string)>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) rows.Add((reader.GetInt64(0), reader.GetString(1)));
        return rows;
    }

    /// <summary>The newest entry about the account, or null (for the login notices, which cite it).</summary>
    public AuditEntry? LatestAbout(string account)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT entry FROM audit_log WHERE json_extract(entry, '$.account') = $account ORDER BY idx DESC LIMIT 1";
        command.Parameters.AddWithValue("$account", account);
        return command.ExecuteScalar() is string text ? ParseEntry(text) : null;
    }

    public IReadOnlyList<AuditEntry> Read(long start = 0, long end = long.MaxValue) =>
        [.. ReadRaw(start, end).Select(row => ParseEntry(row.Text))];

    public static AuditEntry ParseEntry(string text)
    {
        using var document = JsonDocument.Parse(text);
        return AuditEntry.Parse(document.RootElement);
    }

    /// <summary>The leaf hashes of the first <paramref name="size"/> entries, computed from the stored text.</summary>
    public List<byte[]> LeafHashes(long size = long.MaxValue) =>
        [.. ReadRaw(0, size).Select(row => MerkleTree.LeafHash(Encoding.UTF8.GetBytes(row.Text)))];

    public TreeHead? LatestHead
    {
        get
        {
            using var connection = Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT head FROM audit_head ORDER BY size DESC LIMIT 1";
            return command.ExecuteScalar() is string text ? TreeHead.Parse(text) : null;
        }
    }

    /// <summary>Entries and heads in the order an export lists them (each head after the last entry it covers), read in one snapshot.</summary>
    public IEnumerable<(long Index, string? Entry, TreeHead? Head)> Snapshot()
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction(deferred: true);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT head FROM audit_head ORDER BY size";
        var heads = new List<TreeHead>();
        using (var reader = command.ExecuteReader())
            while (reader.Read()) heads.Add(TreeHead.Parse(reader.GetString(0)));
        command.CommandText = "SELECT idx, entry FROM audit_log ORDER BY idx";
        var h = 0;
        var count = 0L;
        using (var reader = command.ExecuteReader())
            while (reader.Read())
            {
                for (; h < heads.Count && heads[h].Size <= count; h++) yield return (heads[h].Size, null, heads[h]);
                yield return (reader.GetInt64(0), reader.GetString(1), null);
                count++;
            }
        for (; h < heads.Count; h++) yield return (heads[h].Size, null, heads[h]);
    }

    /// <summary>Checks the stored log as <c>candor audit verify</c> checks an export.</summary>
    public AuditVerifier Verify()
    {
        var verifier = new AuditVerifier();
        foreach (var (index, entry, head) in Snapshot())
            if (!(head is null ? verifier.AddStored(index, entry!) : verifier.AddHead(head, $"the tree head of size {head.Size}"))) break;
        verifier.Finish();
        return verifier;
    }

    /// <summary>Signs a head over every committed entry and stores it (replacing an older one of the same size).</summary>
    public TreeHead SignHead()
    {
        var key = SigningKey();
        var leaves = LeafHashes();
        var root = MerkleTree.Root(leaves, leaves.Count);
        var time = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var signature = SignatureAlgorithm.Ed25519.Sign(key, TreeHead.SignedBytes(leaves.Count, root, time));
        var head = new TreeHead(leaves.Count, root, time, signature, key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO audit_head (size, head) VALUES ($size, $head) ON CONFLICT (size) DO UPDATE SET head = excluded.head";
        command.Parameters.AddWithValue("$size", head.Size);
        command.Parameters.AddWithValue("$head", head.ToJson());
        command.ExecuteNonQuery();
        return head;
    }

    /// <summary>Signs a head when entries were added since the latest one.</summary>
    public TreeHead? SignHeadIfGrown() => Size > (LatestHead?.Size ?? -1) ? SignHead() : null;

    /// <summary>
    /// The log key, made on first use; refused when missing while the log holds heads it signed, because a new key
    /// would let whoever has only the database sign a rewritten history.
    /// </summary>
    private Key SigningKey()
    {
        if (_key is not null) return _key;
        var parameters = new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
        if (File.Exists(_keyPath))
        {
            var text = File.ReadAllText(_keyPath).Trim();
            var bytes = new byte[32];
            if (!Convert.TryFromBase64String(text, bytes, out var length) || length != 32)
                throw new KeyException($"the audit log key file {_keyPath} is not a base64 Ed25519 private key");
            return _key = Key.Import(SignatureAlgorithm.Ed25519, bytes, KeyBlobFormat.RawPrivateKey, parameters);
        }
        if (LatestHead is { } head)
            throw new KeyException($"no audit log key: {_keyPath} is missing and the log's heads are signed with key {head.KeyText}; restore the key file from its backup");
        var key = Key.Create(SignatureAlgorithm.Ed25519, parameters);
        KeyFiles.WriteKeyFile(_keyPath, key.Export(KeyBlobFormat.RawPrivateKey));
        return _key = key;
    }
}
