using System.CommandLine;
using System.Globalization;
using Candor.Server.Audit;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Microsoft.Data.Sqlite;

namespace Candor.Cli;

/// <summary>
/// <c>candor backup --out FILE</c> and <c>candor restore FILE</c>: a consistent copy of the SQLite database, taken
/// with SQLite's online backup API so the server may keep running and writing. The master key is never in it.
/// </summary>
internal static class BackupCommand
{
    public static Command Backup()
    {
        var common = new CommonOptions();
        var output = new Option<string>("--out") { Description = "File to write the backup to (must not exist)", Required = true };
        var command = new Command("backup", "Copy the database consistently, also while the server runs (SQLite only; the master key is not included)");
        common.AddTo(command);
        command.Add(output);
        command.SetAction(parse => Run(() =>
        {
            var options = common.Load(parse);
            if (options.Postgres is not null) return OnPostgres("backup");
            var database = Path.Combine(options.DataDirectory, SqliteStorage.FileName);
            var target = parse.GetValue(output)!;
            if (!File.Exists(database)) return PolicyCommand.Fail(ExitCodes.NotFound, $"no database at {Path.GetFullPath(database)}");
            if (File.Exists(target)) return PolicyCommand.Fail(ExitCodes.Exists, $"{target} exists already");
            var partial = target + ".partial";
            File.Delete(partial);
            Copy(database, partial, SqliteOpenMode.ReadWrite);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(partial, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(partial, target);
            AuditLog.RecordAsync(options, AuditActions.BackupCreated, null, new Dictionary<string, string>
            {
                ["file"] = Path.GetFileName(target), ["bytes"] = new FileInfo(target).Length.ToString(CultureInfo.InvariantCulture),
            }).GetAwaiter().GetResult();
            Console.WriteLine($"Backed up {Path.GetFullPath(database)} to {Path.GetFullPath(target)} ({new FileInfo(target).Length} bytes, one consistent snapshot).");
            Console.WriteLine($"The master key is NOT in the backup: keep a copy of {new KeyFiles(options).Describe} apart from it; without the key the backup opens nothing. Keep the operator log's signing key ({AuditLog.KeyPathOf(options)}) with it; this backup is in the operator log, the backup itself holds the log up to before it.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Restore()
    {
        var common = new CommonOptions();
        var file = new Argument<string>("FILE") { Description = "A file written by 'candor backup'" };
        var log = new Option<string?>("--log") { Description = "An export of the newer operator log ('candor audit export'): the entries made since the backup are put back, so the log does not roll back" };
        var command = new Command("restore", "Restore a backup into a data directory that has no database yet");
        command.Add(file);
        command.Add(log);
        common.AddTo(command);
        command.SetAction(parse => Run(() =>
        {
            var options = common.Load(parse);
            if (options.Postgres is not null) return OnPostgres("restore");
            var source = parse.GetValue(file)!;
            if (!File.Exists(source)) return PolicyCommand.Fail(ExitCodes.NotFound, $"no such file {source}");
            using var dataLock = ServeCommand.LockDataDirectory(options.DataDirectory);
            if (dataLock is null) return PolicyCommand.Fail(ExitCodes.Failure, $"a server is running on {Path.GetFullPath(options.DataDirectory)}: stop it first");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
            var database = Path.Combine(options.DataDirectory, SqliteStorage.FileName);
            if (File.Exists(database)) return PolicyCommand.Fail(ExitCodes.Exists, $"{Path.GetFullPath(database)} exists already: restore into a directory without a database");
            using (var check = Open(source, SqliteOpenMode.ReadOnly))
            using (var command = check.CreateCommand())
            {
                command.CommandText = "PRAGMA integrity_check;";
                if (command.ExecuteScalar() as string != "ok") return PolicyCommand.Fail(ExitCodes.Failure, $"{source} is damaged (SQLite integrity check failed)");
            }
            var newer = parse.GetValue(log) is { } export ? ReadExport(export) : null;
            if (newer is { Problem: { } problem }) return PolicyCommand.Fail(ExitCodes.Failure, problem);
            Copy(source, database, SqliteOpenMode.ReadOnly);
            var audit = AuditLog.Open(options);
            var backupSize = audit.Size;
            if (newer is not null && audit.Continue(newer.Entries, newer.Head!) is { } refusal)
            {
                SqliteConnection.ClearAllPools();
                foreach (var suffix in new[] { "", "-wal", "-shm" }) File.Delete(database + suffix);
                return PolicyCommand.Fail(ExitCodes.Failure, $"{parse.GetValue(log)}: {refusal}; nothing was restored");
            }
            var lost = newer is null ? "unknown: no export of the newer log was given" : "none";
            audit.AppendAsync(AuditEntry.Actors.Operator, AuditActions.BackupRestored, null, new Dictionary<string, string>
            {
                ["file"] = Path.GetFileName(source), ["backup_log_size"] = backupSize.ToString(CultureInfo.InvariantCulture),
                ["entries_put_back"] = ((newer?.Entries.Count ?? backupSize) - backupSize).ToString(CultureInfo.InvariantCulture), ["entries_lost"] = lost,
            }).GetAwaiter().GetResult();
            // The server signs a head at start otherwise; a missing key is reported below.
            if (File.Exists(AuditLog.KeyPathOf(options))) audit.SignHead();
            Console.WriteLine($"Restored {Path.GetFullPath(source)} to {Path.GetFullPath(database)}.");
            Console.WriteLine(newer is null
                ? $"The operator log is back at the backup's {backupSize} entries (and this restore): a monitor that saw a later head will report a rollback, rightly. To continue the newer log instead, restore again with --log and an export of it ('candor audit export')."
                : $"The operator log continues: the {newer.Entries.Count - backupSize} entries made since the backup were put back from {parse.GetValue(log)}, then this restore was recorded.");
            var keys = new KeyFiles(options);
            if (!keys.FromSetting && !File.Exists(keys.KeyPath))
                Console.WriteLine($"Now put the master key the data was sealed with at {keys.KeyPath} (mode 0600), or set MasterKey, and the operator log's signing key at {AuditLog.KeyPathOf(options)}, before starting the server.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private sealed record Export(List<AuditEntry> Entries, TreeHead? Head, string? Problem);

    /// <summary>An operator log export, verified as <c>candor audit verify</c> does; the entries are those its head covers.</summary>
    private static Export ReadExport(string path)
    {
        if (!File.Exists(path)) return new([], null, $"no such file {path}");
        var verifier = new AuditVerifier();
        var entries = new List<AuditEntry>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (!verifier.AddLine(++number, line)) break;
            if (verifier.Entries > entries.Count) entries.Add(AuditLog.ParseEntry(line));
        }
        verifier.Finish();
        if (verifier.Problem is { } problem) return new([], null, $"{path}: {problem}");
        if (verifier.LastHead is not { } head) return new([], null, $"{path}: an empty log");
        return new([.. entries.Take((int)head.Size)], head, null);
    }

    /// <summary>Copies <paramref name="from"/> page by page with SQLite's backup API, into a file with no journal beside it.</summary>
    private static int OnPostgres(string verb) => PolicyCommand.Fail(ExitCodes.Usage,
        $"{verb} works on the SQLite database only; with --postgres use PostgreSQL's pg_dump/pg_restore (and back up the master key in the data directory apart)");

    private static void Copy(string from, string to, SqliteOpenMode mode)
    {
        using var source = Open(from, mode);
        using var destination = Open(to, SqliteOpenMode.ReadWriteCreate);
        source.BackupDatabase(destination);
        using var command = destination.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=DELETE;";
        command.ExecuteNonQuery();
    }

    private static SqliteConnection Open(string path, SqliteOpenMode mode)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        // The server may hold a write lock for a moment; wait for it rather than fail.
        command.CommandText = "PRAGMA busy_timeout=10000;";
        command.ExecuteNonQuery();
        return connection;
    }

    private static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (OptionsException e)
        {
            return PolicyCommand.Fail(ExitCodes.Usage, e.Message);
        }
        catch (SqliteException e)
        {
            return PolicyCommand.Fail(ExitCodes.Failure, $"SQLite: {e.Message}");
        }
    }
}
