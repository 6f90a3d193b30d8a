using System.CommandLine;
using Candor.Server.Audit;
using Candor.Server.Hosting;
using Candor.Server.Storage;

namespace Candor.Cli;

/// <summary><c>candor key rotate|status</c>: the master key that seals the stored data.</summary>
internal static class KeyCommand
{
    public static Command Create()
    {
        var command = new Command("key", "The master key that seals stored data (works while the server runs on the same --data)");
        command.Add(Rotate());
        command.Add(Status());
        return command;
    }

    private static Command Rotate()
    {
        var common = new CommonOptions();
        var command = new Command("rotate", "Re-seal everything under a new master key and keep no old one (safe to interrupt and run again)");
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, async (options, storage) =>
        {
            // Holding the data directory's lock keeps a server from starting halfway; when a server holds it,
            // the rotation waits until that server seals with the new key.
            using var dataLock = ServeCommand.LockDataDirectory(options.DataDirectory);
            var (old, next, resealed) = await storage.RotateAsync(serverRunning: dataLock is null, Console.WriteLine);
            Console.WriteLine($"Rotated: {resealed} records re-sealed from key {old.IdText} to key {next.IdText}; {storage.Files.KeyPath} holds only the new key.");
            Console.WriteLine("Back up the new key file now: the old one no longer opens anything.");
            await AuditLog.RecordAsync(options, AuditActions.KeyRotated, null, new Dictionary<string, string> { ["from"] = old.IdText, ["to"] = next.IdText, ["records"] = resealed.ToString() });
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Status()
    {
        var common = new CommonOptions();
        var command = new Command("status", "Say which key seals how many records");
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, async (_, storage) =>
        {
            var keys = storage.Keys;
            Console.WriteLine($"Master key: {storage.Files.Describe}");
            if (keys.All.Count > 1)
                Console.WriteLine($"A rotation is unfinished ({storage.Files.NextPath}): run 'candor key rotate' to finish it.");
            Console.WriteLine($"{"KEY",-10} {"RECORDS",10}");
            var counts = await storage.CountByKeyAsync();
            foreach (var key in keys.All)
                Console.WriteLine($"{key.IdText,-10} {counts.GetValueOrDefault(key.Id),10}  {(key == keys.Current ? "seals new records" : "old key, still opens records")}");
            foreach (var (id, count) in counts.Where(c => keys.Find(c.Key) is null).OrderBy(c => c.Key))
                Console.WriteLine($"{(id == 0 ? "none" : id.ToString("x8")),-10} {count,10}  {(id == 0 ? "NOT SEALED" : "UNKNOWN KEY: these records cannot be opened")}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task<int> Run(ParseResult parse, CommonOptions common, Func<ServerOptions, SealedStorage, Task<int>> action)
    {
        try
        {
            var options = common.Load(parse);
            await using var storage = await UserCommand.OpenStorageAsync(options, create: false);
            return await action(options, storage);
        }
        catch (OptionsException e)
        {
            Console.Error.WriteLine($"candor: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (KeyException e)
        {
            Console.Error.WriteLine($"candor: {e.Message}");
            return ExitCodes.Failure;
        }
        catch (System.Data.Common.DbException e)
        {
            Console.Error.WriteLine($"candor: storage: {e.Message}");
            return ExitCodes.Failure;
        }
    }
}
