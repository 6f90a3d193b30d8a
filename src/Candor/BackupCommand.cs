using System.CommandLine;
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
            Console.WriteLine($"Backed up {Path.GetFullPath(database)} to {Path.GetFullPath(target)} ({new FileInfo(target).Length} bytes, one consistent snapshot).");
            Console.WriteLine($"The master key is NOT in the backup: keep a copy of {new KeyFiles(options).Describe} apart from it; without the key the backup opens nothing. Keep the operator log's signing key ({Candor.Server.Audit.AuditLog.KeyPathOf(options)}) with it.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Restore()
    {
        var common = new CommonOptions();
        var file = new Argument<string>("FILE") { Description = "A file written by 'candor backup'" };
        var command = new Command("restore", "Restore a backup into a data directory that has no database yet");
        command.Add(file);
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
            Copy(source, database, SqliteOpenMode.ReadOnly);
            Console.WriteLine($"Restored {Path.GetFullPath(source)} to {Path.GetFullPath(database)}.");
            var keys = new KeyFiles(options);
            if (!keys.FromSetting && !File.Exists(keys.KeyPath))
                Console.WriteLine($"Now put the master key the data was sealed with at {keys.KeyPath} (mode 0600), or set MasterKey, and the operator log's signing key at {Candor.Server.Audit.AuditLog.KeyPathOf(options)}, before starting the server.");
            return ExitCodes.Ok;
        }));
        return command;
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
