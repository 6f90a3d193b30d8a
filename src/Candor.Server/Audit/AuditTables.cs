using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Candor.Server.Audit;

/// <summary>
/// Where <see cref="AuditLog"/> keeps its two tables: the same SQL on SQLite and PostgreSQL, except for the schema
/// (with the triggers that refuse to change or delete an entry), how an append shuts out other appends while it picks
/// the next index, how a reader gets one snapshot, and how SQL reads the account out of an entry's JSON.
/// </summary>
internal abstract class AuditTables
{
    public abstract DbConnection Open();

    /// <summary>Creates the tables and triggers when missing.</summary>
    public abstract void CreateSchema();

    /// <summary>A transaction no other append runs beside, so that the next index is this one's until it commits.</summary>
    public abstract DbTransaction BeginAppend(DbConnection connection);

    /// <summary>A transaction whose reads all see the same committed state.</summary>
    public abstract DbTransaction BeginSnapshot(DbConnection connection);

    /// <summary>SQL for the string field <paramref name="name"/> of the JSON in column 'entry'.</summary>
    public abstract string FieldOfEntry(string name);

    protected static void Execute(DbConnection connection, DbTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}

/// <summary>The log in a SQLite file (the data directory's candor.db). BEGIN IMMEDIATE orders appends.</summary>
internal sealed class SqliteAuditTables(string database) : AuditTables
{
    private readonly string _connectionString =
        new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true }.ToString();

    public override DbConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, null, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;");
        return connection;
    }

    public override void CreateSchema()
    {
        using var connection = Open();
        Execute(connection, null, """
            CREATE TABLE IF NOT EXISTS audit_log (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS audit_head (size INTEGER PRIMARY KEY, head TEXT NOT NULL);
            CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE INDEX IF NOT EXISTS audit_log_by_account ON audit_log (json_extract(entry, '$.account'), idx);
            """);
    }

    public override DbTransaction BeginAppend(DbConnection connection) => ((SqliteConnection)connection).BeginTransaction(deferred: false);

    public override DbTransaction BeginSnapshot(DbConnection connection) => ((SqliteConnection)connection).BeginTransaction(deferred: true);

    public override string FieldOfEntry(string name) => $"json_extract(entry, '$.{name}')";
}

/// <summary>
/// The log in the PostgreSQL database of <c>--postgres</c>, beside the stores. An append locks audit_log against other
/// appends (SHARE ROW EXCLUSIVE conflicts with itself, not with readers); the schema is made under an advisory lock so
/// that processes starting together do not race; the triggers refuse UPDATE, DELETE and TRUNCATE.
/// </summary>
internal sealed class PostgresAuditTables(string connectionString) : AuditTables
{
    // Any constant shared by every Candor process, other than the storage schema's.
    private const long SchemaLock = 0x43616e646f7241; // "CandorA"

    public override DbConnection Open()
    {
        var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        return connection;
    }

    public override void CreateSchema()
    {
        using var connection = Open();
        using (var check = connection.CreateCommand())
        {
            // Made already: replacing the triggers would wait for the appends under way, at every opening.
            check.CommandText = "SELECT COUNT(*) FROM pg_trigger WHERE tgname IN ('audit_log_no_change', 'audit_log_no_truncate') AND to_regclass('audit_head') IS NOT NULL AND to_regclass('audit_log_by_account') IS NOT NULL";
            if (Convert.ToInt64(check.ExecuteScalar()) == 2) return;
        }
        using var transaction = connection.BeginTransaction();
        Execute(connection, transaction, $"""
            SELECT pg_advisory_xact_lock({SchemaLock});
            CREATE TABLE IF NOT EXISTS audit_log (idx BIGINT PRIMARY KEY, entry TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS audit_head (size BIGINT PRIMARY KEY, head TEXT NOT NULL);
            CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
            CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
                FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
            CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
            -- Every login notice asks for the newest entry about its account (AuditLog.LatestAbout): no scan of the log.
            CREATE INDEX IF NOT EXISTS audit_log_by_account ON audit_log ((entry::jsonb ->> 'account'), idx);
            """);
        transaction.Commit();
    }

    public override DbTransaction BeginAppend(DbConnection connection)
    {
        var transaction = ((NpgsqlConnection)connection).BeginTransaction();
        Execute(connection, transaction, "LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE");
        return transaction;
    }

    public override DbTransaction BeginSnapshot(DbConnection connection) =>
        ((NpgsqlConnection)connection).BeginTransaction(IsolationLevel.RepeatableRead);

    public override string FieldOfEntry(string name) => $"(entry::jsonb ->> '{name}')";
}
