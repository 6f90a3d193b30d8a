using System.Data.Common;
using System.Text;
using System.Text.Json;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using NSec.Cryptography;

namespace Candor.Server.Audit;

/// <summary>
/// Promise 6, the operator log (issue 18): an append-only list of <see cref="AuditEntry"/> in the server's database
/// (tables audit_log and audit_head; triggers refuse updates and deletes), the Merkle tree of RFC 9162 over it, and
/// tree heads signed with the log key, an Ed25519 key kept beside the master key (DATA/keys/audit.key) and never in the
/// database. The database is the SQLite file of the data directory, or with <c>--postgres</c> the PostgreSQL database
/// (<see cref="AuditTables"/>). Each append is one transaction, so a crash leaves the log with or without the entry,
/// never half of it; a head is signed over entries already committed. The server and the <c>candor ...</c> commands
/// append to the same database at once; the append transaction orders them.
/// The log is public (served over HTTP): entries name accounts but hold no password, key or content.
/// </summary>
public sealed class AuditLog
{
    private readonly AuditTables _tables;
    private readonly string _keyPath;
    private readonly byte[]? _derivedKey;
    private Key? _key;

    private AuditLog(AuditTables tables, string keyPath, byte[]? derivedKey = null)
    {
        _tables = tables;
        _keyPath = keyPath;
        _derivedKey = derivedKey;
        _tables.CreateSchema();
    }

    /// <summary>
    /// The log in the server's database, signed with the key beside the master key file. With PostgreSQL, a log that
    /// an earlier version kept in DATA/audit.db beside it moves into PostgreSQL while PostgreSQL's log is empty.
    /// </summary>
    public static AuditLog Open(ServerOptions options)
    {
        var derived = options.MasterKey is { } setting ? new MasterKey(KeyFiles.ParseKey(setting, "MasterKey")).AuditLogSeed : null;
        if (options.Postgres is null) return new(new SqliteAuditTables(Path.Combine(options.DataDirectory, SqliteStorage.FileName)), KeyPathOf(options), derived);
        var log = new AuditLog(new PostgresAuditTables(options.Postgres), KeyPathOf(options), derived);
        var legacy = Path.Combine(options.DataDirectory, "audit.db");
        if (File.Exists(legacy)) log.Adopt(legacy);
        return log;
    }

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

    /// <summary>
    /// Takes over the log of a SQLite database (<c>candor migrate</c>, or DATA/audit.db of an earlier version) as it is
    /// stored, entries and signed heads, when this log is empty; returns how many entries it copied. The copy keeps
    /// every index and leaf hash, so monitors see the same log continue.
    /// </summary>
    public long Adopt(string sqliteDatabase)
    {
        var source = new AuditLog(new SqliteAuditTables(sqliteDatabase), _keyPath);
        using var connection = _tables.Open();
        using var transaction = _tables.BeginAppend(connection);
        using var command = Command(connection, transaction, "SELECT COUNT(*) FROM audit_log");
        if (Convert.ToInt64(command.ExecuteScalar()) > 0) return 0;
        var copied = 0L;
        foreach (var (index, entry, head) in source.Snapshot())
        {
            command.Parameters.Clear();
            if (head is null)
            {
                command.CommandText = "INSERT INTO audit_log (idx, entry) VALUES (@idx, @entry)";
                Add(command, "idx", index);
                Add(command, "entry", entry!);
                copied++;
            }
            else
                SetHeadCommand(command, head);
            command.ExecuteNonQuery();
        }
        transaction.Commit();
        return copied;
    }

    private static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    private static void SetHeadCommand(DbCommand command, TreeHead head)
    {
        command.Parameters.Clear();
        command.CommandText = "INSERT INTO audit_head (size, head) VALUES (@size, @head) ON CONFLICT (size) DO UPDATE SET head = excluded.head";
        Add(command, "size", head.Size);
        Add(command, "head", head.ToJson());
    }

    /// <summary>Appends an entry; returns its index.</summary>
    public Task<long> AppendAsync(string actor, string action, string? account, IReadOnlyDictionary<string, string>? details = null) =>
        Task.FromResult(AppendMany(actor, action, [account], details));

    /// <summary>One entry per account, all in one transaction (a bulk import); returns the index of the first.</summary>
    public long AppendMany(string actor, string action, IReadOnlyList<string?> accounts, IReadOnlyDictionary<string, string>? details = null)
    {
        using var connection = _tables.Open();
        using var transaction = _tables.BeginAppend(connection);
        using var command = Command(connection, transaction, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log");
        var first = Convert.ToInt64(command.ExecuteScalar());
        command.CommandText = "INSERT INTO audit_log (idx, entry) VALUES (@idx, @entry)";
        for (var i = 0; i < accounts.Count; i++)
        {
            var entry = new AuditEntry(first + i, DateTimeOffset.UtcNow, actor, action, accounts[i], details ?? new Dictionary<string, string>());
            command.Parameters.Clear();
            Add(command, "idx", entry.Index);
            Add(command, "entry", Encoding.UTF8.GetString(entry.ToBytes()));
            command.ExecuteNonQuery();
        }
        transaction.Commit();
        return first;
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
        using var connection = _tables.Open();
        using var transaction = _tables.BeginAppend(connection);
        using var command = Command(connection, transaction, "INSERT INTO audit_log (idx, entry) VALUES (@idx, @entry)");
        foreach (var entry in exported.Skip(stored.Count))
        {
            command.Parameters.Clear();
            Add(command, "idx", entry.Index);
            Add(command, "entry", Encoding.UTF8.GetString(entry.ToBytes()));
            command.ExecuteNonQuery();
        }
        SetHeadCommand(command, head);
        command.ExecuteNonQuery();
        transaction.Commit();
        return null;
    }

    public long Size
    {
        get
        {
            using var connection = _tables.Open();
            using var command = Command(connection, null, "SELECT COUNT(*) FROM audit_log");
            return Convert.ToInt64(command.ExecuteScalar());
        }
    }

    /// <summary>Entries <paramref name="start"/> to <paramref name="end"/> (exclusive) as stored, with their index in the table.</summary>
    public IReadOnlyList<(long Index, string Text)> ReadRaw(long start = 0, long end = long.MaxValue)
    {
        using var connection = _tables.Open();
        using var command = Command(connection, null, "SELECT idx, entry FROM audit_log WHERE idx >= @start AND idx < @end ORDER BY idx");
        Add(command, "start", start);
        Add(command, "end", end);
        var rows = new List<(long, string)>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) rows.Add((reader.GetInt64(0), reader.GetString(1)));
        return rows;
    }

    /// <summary>The newest entry about the account, or null (for the login notices, which cite it).</summary>
    public AuditEntry? LatestAbout(string account) => Latest("account", account);

    /// <summary>The newest entry of the action, or null.</summary>
    public AuditEntry? LatestOf(string action) => Latest("action", action);

    private AuditEntry? Latest(string field, string value)
    {
        using var connection = _tables.Open();
        using var command = Command(connection, null, $"SELECT entry FROM audit_log WHERE {_tables.FieldOfEntry(field)} = @value ORDER BY idx DESC LIMIT 1");
        Add(command, "value", value);
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
            using var connection = _tables.Open();
            using var command = Command(connection, null, "SELECT head FROM audit_head ORDER BY size DESC LIMIT 1");
            return command.ExecuteScalar() is string text ? TreeHead.Parse(text) : null;
        }
    }

    /// <summary>Entries and heads in the order an export lists them (each head after the last entry it covers), read in one snapshot.</summary>
    public IEnumerable<(long Index, string? Entry, TreeHead? Head)> Snapshot()
    {
        using var connection = _tables.Open();
        using var transaction = _tables.BeginSnapshot(connection);
        using var command = Command(connection, transaction, "SELECT head FROM audit_head ORDER BY size");
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
        using var connection = _tables.Open();
        using var command = Command(connection, null, "");
        SetHeadCommand(command, head);
        command.ExecuteNonQuery();
        return head;
    }

    /// <summary>Signs a head when entries were added since the latest one.</summary>
    public TreeHead? SignHeadIfGrown() => Size > (LatestHead?.Size ?? -1) ? SignHead() : null;

    /// <summary>
    /// The log key: the key file; else, when the master key is the MasterKey setting, derived from it; else made on
    /// first use. Refused when missing while the log holds heads it signed, because a new key would let whoever has
    /// only the database sign a rewritten history.
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
        // Every node of a cluster has the master key as a setting, and so signs with the same log key.
        if (_derivedKey is not null)
        {
            var derived = Key.Import(SignatureAlgorithm.Ed25519, _derivedKey, KeyBlobFormat.RawPrivateKey, parameters);
            if (LatestHead is { } signed && signed.KeyText != Convert.ToBase64String(derived.PublicKey.Export(KeyBlobFormat.RawPublicKey)))
                throw new KeyException($"the log's heads are signed with key {signed.KeyText}, not with the key derived from this MasterKey: put that log key's file at {_keyPath}");
            return _key = derived;
        }
        if (LatestHead is { } head)
            throw new KeyException($"no audit log key: {_keyPath} is missing and the log's heads are signed with key {head.KeyText}; restore the key file from its backup");
        var key = Key.Create(SignatureAlgorithm.Ed25519, parameters);
        KeyFiles.WriteKeyFile(_keyPath, key.Export(KeyBlobFormat.RawPrivateKey));
        return _key = key;
    }
}
