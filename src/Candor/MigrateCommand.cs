using System.CommandLine;
using Candor.Server.Audit;
using Candor.Server.Hosting;
using Candor.Server.Storage;

namespace Candor.Cli;

/// <summary><c>candor migrate --from-sqlite DIR --postgres ...</c>: a SQLite deployment into PostgreSQL.</summary>
internal static class MigrateCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var from = new Option<string>("--from-sqlite")
        {
            Description = "Data directory of the SQLite deployment (its candor.db and master key); serve with --data DIR --postgres ... afterwards",
            Required = true,
        };
        var command = new Command("migrate", "Copy a SQLite deployment's data into an empty PostgreSQL database (stop the server first)");
        common.AddTo(command);
        command.Add(from);
        command.SetAction(async parse =>
        {
            try
            {
                var options = common.Load(parse, o => o.DataDirectory = parse.GetValue(from)!);
                using var dataLock = ServeCommand.LockDataDirectory(options.DataDirectory);
                if (dataLock is null)
                    throw new OptionsException($"a server is running on {Path.GetFullPath(options.DataDirectory)}: stop it first, so that nothing is written after the copy");
                var counts = await SqliteToPostgres.RunAsync(options);
                Console.WriteLine($"Copied {counts.Total} records ({counts.KeyValue} key-value, {counts.Map} map, {counts.Archive} archive, {counts.ArchiveBodies} archive bodies) into PostgreSQL.");
                // The operator log moves too, as it is (indexes, leaf hashes, signed heads), so that monitors see it continue.
                var log = AuditLog.Open(options);
                var entries = log.Adopt(Path.Combine(options.DataDirectory, SqliteStorage.FileName));
                await AuditLog.RecordAsync(options, AuditActions.StorageMigrated, null, new Dictionary<string, string> { ["from"] = "sqlite", ["to"] = "postgresql" });
                Console.WriteLine($"Copied the operator log's {entries} entries into PostgreSQL, and recorded the migration in it.");
                Console.WriteLine($"Serve them with: candor serve --data {options.DataDirectory} --postgres \"...\" (the master key stays in {options.DataDirectory}).");
                return ExitCodes.Ok;
            }
            catch (OptionsException e)
            {
                Console.Error.WriteLine($"candor: {e.Message}");
                return ExitCodes.Usage;
            }
            catch (Exception e) when (e is KeyException or InvalidOperationException or System.Data.Common.DbException)
            {
                Console.Error.WriteLine($"candor: {e.Message}");
                return ExitCodes.Failure;
            }
        });
        return command;
    }
}
