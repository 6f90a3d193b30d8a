using System.CommandLine;
using System.Text;
using Candor.Server.Accounts;
using Candor.Server.Audit;
using Candor.Server.Hosting;
using Candor.Server.Modules.DataExport;
using Candor.Server.Storage;
using Candor.Xmpp;

namespace Candor.Cli;

/// <summary><c>candor user add|passwd|remove|list</c>: accounts, on the same data directory as a running server.</summary>
internal static class UserCommand
{
    public static Command Create()
    {
        var command = new Command("user", "Manage accounts (works while the server runs on the same --data)");
        command.Add(Add());
        command.Add(Passwd());
        command.Add(Remove());
        command.Add(List());
        command.Add(Sessions());
        command.Add(PurgeArchive());
        command.Add(Export());
        command.Add(Import());
        return command;
    }

    private static Command Add()
    {
        var common = new CommonOptions();
        var jid = new Argument<string?>("JID") { Description = "The account, e.g. alice@localhost", Arity = ArgumentArity.ZeroOrOne };
        var password = new Option<string?>("--password") { Description = "The password (prompted without echo when left out)" };
        var fromFile = new Option<string?>("--from-file")
        {
            Description = "Create many accounts: one 'user:password' (or 'user@domain:password') per line, '-' for standard input",
        };
        var command = new Command("add", "Create an account, or many with --from-file");
        command.Add(jid);
        command.Add(password);
        command.Add(fromFile);
        common.AddTo(command);
        command.SetAction(parse =>
        {
            if (parse.GetValue(fromFile) is { } file)
                return parse.GetValue(jid) is null && parse.GetValue(password) is null
                    ? AddMany(common, parse, file)
                    : Task.FromResult(AddUsage("--from-file takes neither a JID nor --password"));
            if (parse.GetValue(jid) is not { } one) return Task.FromResult(AddUsage("a JID or --from-file is required"));
            return Run(parse, common, one, async (accounts, user, full) =>
            {
                var pw = parse.GetValue(password) ?? PromptPassword($"Password for {full}: ", confirm: true);
                if (pw is null) return Fail(ExitCodes.Usage, "a password is required");
                if (!await accounts.CreateAsync(user, pw)) return Fail(ExitCodes.Exists, $"{full} exists already");
                Console.WriteLine($"Created {full}.");
                return ExitCodes.Ok;
            }, AuditActions.AccountCreated, creates: true);
        });
        return command;
    }

    /// <summary>A usage error of 'user add' the parser cannot see (JID and --from-file are each optional), worded like the parser's.</summary>
    private static int AddUsage(string message)
    {
        Console.Error.WriteLine($"candor user add: {message} (see 'candor user add --help')");
        return ExitCodes.Usage;
    }

    private const int AddBatch = 1000;

    /// <summary>
    /// <c>user add --from-file</c>: the whole file is checked before anything is written; then each batch of accounts
    /// is derived on every core and written in one transaction, with its operator-log entries in another, and one
    /// signed head at the end.
    /// </summary>
    private static async Task<int> AddMany(CommonOptions common, ParseResult parse, string path)
    {
        ServerOptions options;
        try
        {
            options = common.Load(parse);
        }
        catch (OptionsException e)
        {
            return Fail(ExitCodes.Usage, e.Message);
        }
        if (path != "-" && !File.Exists(path)) return Fail(ExitCodes.NotFound, $"no such file {path}");
        var accounts = new List<(string User, string Password)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using (var reader = path == "-" ? Console.In : new StreamReader(path))
        {
            var number = 0;
            while (await reader.ReadLineAsync() is { } line)
            {
                number++;
                if (line.Length == 0 || line.StartsWith('#')) continue;
                // RFC 7622 allows no ':' in a localpart or domain, so the first one ends the JID.
                var colon = line.IndexOf(':');
                if (colon < 0 || colon == line.Length - 1)
                    return Fail(ExitCodes.Usage, $"{path}:{number}: expected 'user:password'");
                if (!TryAccount(line[..colon], options, out var user, out var error))
                    return Fail(ExitCodes.InvalidJid, $"{path}:{number}: {error}");
                if (!seen.Add(user)) return Fail(ExitCodes.Usage, $"{path}:{number}: {user} appears twice");
                accounts.Add((user, line[(colon + 1)..]));
            }
        }
        if (accounts.Count == 0) return Fail(ExitCodes.Usage, $"{path} names no account");
        try
        {
            await using var storage = await OpenStorageAsync(options, create: true);
            var store = new AccountStore(storage, options.ScramIterations);
            var log = AuditLog.Open(options);
            int created = 0, existed = 0;
            foreach (var batch in accounts.Chunk(AddBatch))
            {
                var added = await store.CreateManyAsync(batch);
                if (added.Count > 0) log.AppendMany(AuditEntry.Actors.Operator, AuditActions.AccountCreated, added.Select(u => (string?)$"{u}@{options.Domain}").ToList());
                created += added.Count;
                if (added.Count == batch.Length) continue;
                var addedSet = added.ToHashSet(StringComparer.Ordinal);
                foreach (var (user, _) in batch)
                    if (!addedSet.Contains(user))
                    {
                        existed++;
                        Console.Error.WriteLine($"candor: {user}@{options.Domain} exists already");
                    }
            }
            if (created > 0) log.SignHead();
            Console.WriteLine($"Created {created} accounts" + (existed > 0 ? $"; {existed} existed already." : "."));
            return existed > 0 ? ExitCodes.Exists : ExitCodes.Ok;
        }
        catch (System.Data.Common.DbException e)
        {
            return Fail(ExitCodes.Failure, $"storage: {e.Message}");
        }
        catch (KeyException e)
        {
            return Fail(ExitCodes.Failure, e.Message);
        }
    }

    /// <summary>The prepared localpart of an account of this server's domain, given as user or user@domain.</summary>
    private static bool TryAccount(string text, ServerOptions options, out string user, out string error)
    {
        user = error = "";
        if (!text.Contains('@')) text += "@" + options.Domain;
        if (!Jid.TryParse(text, out var jid) || jid.Local is null || !jid.IsBare)
        {
            error = $"invalid JID: '{text}' (expected user@{options.Domain})";
            return false;
        }
        if (jid.Domain != options.Domain)
        {
            error = $"{jid} is not on this server's domain {options.Domain} (see --domain)";
            return false;
        }
        user = jid.Local;
        return true;
    }

    private static Command Passwd()
    {
        var common = new CommonOptions();
        var jid = new Argument<string>("JID");
        var password = new Option<string?>("--password") { Description = "The new password (prompted without echo when left out)" };
        var command = new Command("passwd", "Set an account's password (a running server announces it and ends the account's sessions)");
        command.Add(jid);
        command.Add(password);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, parse.GetValue(jid)!, async (accounts, user, full) =>
        {
            if (!await accounts.ExistsAsync(user)) return Fail(ExitCodes.NotFound, $"no such user: {full}");
            var pw = parse.GetValue(password) ?? PromptPassword($"New password for {full}: ", confirm: true);
            if (pw is null) return Fail(ExitCodes.Usage, "a password is required");
            await accounts.SetPasswordAsync(user, pw);
            Console.WriteLine($"Password of {full} changed.");
            return ExitCodes.Ok;
        }, AuditActions.PasswordSet, announce: OperatorChange.PasswordChanged));
        return command;
    }

    private static Command Remove()
    {
        var common = new CommonOptions();
        var jid = new Argument<string>("JID");
        var command = new Command("remove", "Remove an account and everything stored for it (a running server ends its sessions)");
        command.Add(jid);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, parse.GetValue(jid)!, async (accounts, user, full) =>
        {
            if (!await accounts.RemoveAsync(user)) return Fail(ExitCodes.NotFound, $"no such user: {full}");
            Console.WriteLine($"Removed {full}.");
            return ExitCodes.Ok;
        }, AuditActions.AccountRemoved, announce: OperatorChange.Removed));
        return command;
    }

    private static Command PurgeArchive()
    {
        var common = new CommonOptions();
        var jid = new Argument<string>("JID");
        var command = new Command("purge-archive", "Delete an account's message archive (a running server announces it to the account)");
        command.Add(jid);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, parse.GetValue(jid)!, async (accounts, user, full) =>
        {
            if (!await accounts.ExistsAsync(user)) return Fail(ExitCodes.NotFound, $"no such user: {full}");
            var deleted = await accounts.Storage.OpenArchive(Candor.Server.Modules.Archive.ArchiveModule.StoreName).DeleteAsync(user);
            Console.WriteLine($"Deleted {deleted} archived messages of {full}.");
            return ExitCodes.Ok;
        }, AuditActions.ArchivePurged, announce: OperatorChange.ArchivePurged));
        return command;
    }

    private static Command Export()
    {
        var common = new CommonOptions();
        var jid = new Argument<string>("JID");
        var output = new Option<string>("--out") { Description = "File to write (must not exist)", Required = true };
        var command = new Command("export", "Write an account's data and SCRAM credentials as a XEP-0227 file (recorded in the operator log and announced to the account)");
        command.Add(jid);
        command.Add(output);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, parse.GetValue(jid)!, async (accounts, user, full) =>
        {
            var target = parse.GetValue(output)!;
            if (!await accounts.ExistsAsync(user)) return Fail(ExitCodes.NotFound, $"no such user: {full}");
            if (File.Exists(target)) return Fail(ExitCodes.Exists, $"{target} exists already");
            var document = await PortableData.ExportAsync(accounts, Jid.Parse(full).Domain, user, credentials: true);
            await using (var file = new FileStream(target, FileMode.CreateNew, FileAccess.Write))
            {
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                await file.WriteAsync(Encoding.UTF8.GetBytes("<?xml version='1.0' encoding='UTF-8'?>\n" + Candor.Xml.ElementWriter.ToXmlString(document) + "\n"));
            }
            Console.WriteLine($"Exported {full} to {Path.GetFullPath(target)} (XEP-0227, with its SCRAM credentials: keep it as safe as the database).");
            return ExitCodes.Ok;
        }, AuditActions.DataExported, announce: OperatorChange.DataExported));
        return command;
    }

    private static Command Import()
    {
        var common = new CommonOptions();
        var file = new Argument<string>("FILE") { Description = "A XEP-0227 file (from candor user export, Prosody or ejabberd)" };
        var command = new Command("import", "Create the accounts of a XEP-0227 file for this server's domain, with their data (each recorded in the operator log)");
        command.Add(file);
        common.AddTo(command);
        command.SetAction(async parse =>
        {
            try
            {
                var options = common.Load(parse);
                var path = parse.GetValue(file)!;
                if (!File.Exists(path)) return Fail(ExitCodes.NotFound, $"no such file {path}");
                Candor.Xml.Element document;
                try
                {
                    document = PortableData.Load(path);
                }
                catch (Exception e) when (e is InvalidDataException or Candor.Xml.XmlStreamException)
                {
                    return Fail(ExitCodes.Failure, $"{path}: {e.Message}");
                }
                var users = PortableData.UsersOf(document, options.Domain).ToList();
                if (users.Count == 0) return Fail(ExitCodes.NotFound, $"{path} holds no account of {options.Domain} (see --domain)");
                await using var storage = await OpenStorageAsync(options, create: true);
                var accounts = new AccountStore(storage, options.ScramIterations);
                var code = ExitCodes.Ok;
                foreach (var user in users)
                {
                    var jid = $"{user.GetAttribute("name")}@{options.Domain}";
                    if (await PortableData.ImportAsync(accounts, options.Domain, user) is { } refusal)
                    {
                        code = Fail(ExitCodes.Exists, $"not imported: {refusal}");
                        continue;
                    }
                    await AuditLog.RecordAsync(options, AuditActions.DataImported, jid, new Dictionary<string, string> { ["format"] = "XEP-0227" });
                    Console.WriteLine($"Imported {jid}.");
                }
                return code;
            }
            catch (OptionsException e)
            {
                return Fail(ExitCodes.Usage, e.Message);
            }
            catch (KeyException e)
            {
                return Fail(ExitCodes.Failure, e.Message);
            }
        });
        return command;
    }

    private static Command List()
    {
        var common = new CommonOptions();
        var command = new Command("list", "List the accounts");
        common.AddTo(command);
        command.SetAction(async parse =>
        {
            try
            {
                var options = common.Load(parse);
                await using var storage = await OpenStorageAsync(options, create: false);
                foreach (var user in await new AccountStore(storage, options.ScramIterations).ListAsync())
                    Console.WriteLine($"{user}@{options.Domain}");
                return ExitCodes.Ok;
            }
            catch (OptionsException e)
            {
                return Fail(ExitCodes.Usage, e.Message);
            }
        });
        return command;
    }

    private static Command Sessions()
    {
        var common = new CommonOptions();
        var jid = new Argument<string>("JID");
        var command = new Command("sessions", "List the clients that have accessed an account (revoke them from a client, XEP-0494)");
        command.Add(jid);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, parse.GetValue(jid)!, async (accounts, user, full) =>
        {
            if (!await accounts.ExistsAsync(user)) return Fail(ExitCodes.NotFound, $"no such user: {full}");
            var clients = await new Candor.Server.Modules.Clients.ClientRegistry(accounts.Storage).ListAsync(user);
            Console.WriteLine($"{"CLIENT",-18} {"RESOURCE",-24} {"LAST ADDRESS",-18} {"FIRST SEEN (UTC)",-19} {"LAST SEEN (UTC)",-19} {"ONLINE",-6} SOFTWARE");
            foreach (var c in clients)
                Console.WriteLine($"{c.Id,-18} {c.Resource,-24} {c.LastAddress,-18} {c.FirstSeen.UtcDateTime,-19:yyyy-MM-dd HH:mm:ss} {c.LastSeen.UtcDateTime,-19:yyyy-MM-dd HH:mm:ss} {(c.Sessions > 0 ? "yes" : "no"),-6} {c.Software ?? "-"}");
            if (clients.Count == 0) Console.WriteLine("(no client has logged in)");
            return ExitCodes.Ok;
        }, AuditActions.SessionsRead));
        return command;
    }

    private static async Task<int> Run(ParseResult parse, CommonOptions common, string jidText,
        Func<AccountStore, string, string, Task<int>> action, string auditAction, bool creates = false, OperatorChange? announce = null)
    {
        try
        {
            var options = common.Load(parse);
            if (!TryAccount(jidText, options, out var user, out var error)) return Fail(ExitCodes.InvalidJid, error);
            var full = $"{user}@{options.Domain}";
            await using var storage = await OpenStorageAsync(options, creates);
            var code = await action(new AccountStore(storage, options.ScramIterations), user, full);
            if (code != ExitCodes.Ok) return code;
            var index = await AuditLog.RecordAsync(options, auditAction, full);
            // Queued after the entry exists, so that a running server's notice to the account cites it.
            if (announce is { } change) await new OperatorChanges(storage).RecordAsync(user, change, index);
            return code;
        }
        catch (OptionsException e)
        {
            return Fail(ExitCodes.Usage, e.Message);
        }
        catch (System.Data.Common.DbException e)
        {
            return Fail(ExitCodes.Failure, $"storage: {e.Message}");
        }
        catch (KeyException e)
        {
            return Fail(ExitCodes.Failure, e.Message);
        }
    }

    /// <summary>The server's database; only <c>user add</c> creates one, so that a mistyped --data is not taken for an empty server.</summary>
    internal static Task<SealedStorage> OpenStorageAsync(ServerOptions options, bool create)
    {
        if (!create) RequireData(options);
        Directory.CreateDirectory(options.DataDirectory);
        return SealedStorage.OpenAsync(options);
    }

    internal static void RequireData(ServerOptions options)
    {
        if (options.Postgres is null && !File.Exists(Path.Combine(options.DataDirectory, "candor.db")))
            throw new OptionsException($"no Candor data in {Path.GetFullPath(options.DataDirectory)} (see --data; 'candor serve' or 'candor user add' creates it)");
    }

    internal static int Fail(int code, string message)
    {
        Console.Error.WriteLine($"candor: {message}");
        return code;
    }

    /// <summary>Reads a password without echo from a terminal, or one line from redirected input.</summary>
    private static string? PromptPassword(string prompt, bool confirm)
    {
        if (Console.IsInputRedirected)
        {
            var line = Console.In.ReadLine();
            return string.IsNullOrEmpty(line) ? null : line;
        }
        var first = ReadHidden(prompt);
        if (first.Length == 0) return null;
        if (confirm && ReadHidden("Again: ") != first)
        {
            Console.Error.WriteLine("candor: the passwords differ");
            return null;
        }
        return first;
    }

    private static string ReadHidden(string prompt)
    {
        Console.Error.Write(prompt);
        var text = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) break;
            if (key.Key == ConsoleKey.Backspace) { if (text.Length > 0) text.Length--; continue; }
            if (!char.IsControl(key.KeyChar)) text.Append(key.KeyChar);
        }
        Console.Error.WriteLine();
        return text.ToString();
    }
}
