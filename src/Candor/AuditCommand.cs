using System.CommandLine;
using System.Text;
using System.Text.Json;
using Candor.Server.Audit;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Xmpp;

namespace Candor.Cli;

/// <summary><c>candor audit show|export|verify|monitor</c>: the tamper-evident operator log (promise 6, docs/SECURITY.md).</summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var command = new Command("audit", "The operator log: every operator action, in a Merkle tree with signed heads anyone can check");
        command.Add(Show());
        command.Add(Export());
        command.Add(Verify());
        command.Add(Monitor());
        return command;
    }

    private static Command Show()
    {
        var common = new CommonOptions();
        var account = new Option<string?>("--account") { Description = "Only the entries about this account" };
        var command = new Command("show", "The entries, newest last, one line each");
        command.Add(account);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, options =>
        {
            string? filter = null;
            if (parse.GetValue(account) is { } text)
            {
                if (!text.Contains('@')) text += "@" + options.Domain;
                if (!Jid.TryParse(text, out var jid) || jid.Local is null || !jid.IsBare)
                    return UserCommand.Fail(ExitCodes.InvalidJid, $"invalid JID: '{text}'");
                filter = jid.ToString();
            }
            var log = OpenLog(options);
            foreach (var entry in log.Read())
                if (filter is null || entry.Account == filter) Console.WriteLine(entry);
            if (log.LatestHead is { } head)
                Console.WriteLine($"Signed tree head: size {head.Size}, root {Convert.ToBase64String(head.Root)}, {head.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC, key {head.KeyText}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Export()
    {
        var common = new CommonOptions();
        var output = new Option<string>("--out") { Description = "The file to write (JSON Lines)", Required = true };
        var command = new Command("export", "Write the log as JSON Lines: each entry with its leaf hash, then the signed tree head over them");
        command.Add(output);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, options =>
        {
            var log = OpenLog(options);
            log.SignHeadIfGrown();
            var snapshot = log.Snapshot().ToList();
            // There is one: SignHeadIfGrown signs the first head even of an empty log.
            var head = snapshot.Last(item => item.Head is not null).Head!;
            var path = parse.GetValue(output)!;
            using var file = new StreamWriter(path, append: false, new UTF8Encoding(false));
            var entries = 0L;
            foreach (var (_, text, _) in snapshot.Where(item => item.Entry is not null).Take((int)head.Size))
            {
                WriteLine(file, json => AuditLog.ParseEntry(text!).Write(json, leafHash: true));
                entries++;
            }
            WriteLine(file, head.Write);
            Console.WriteLine($"Wrote {entries} entries and the signed tree head over them to {path}.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Verify()
    {
        var common = new CommonOptions();
        var file = new Argument<string?>("FILE") { Description = "An export ('candor audit export'); without it, the log in --data", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("verify", "Check the log: exit 0 when intact, 1 naming the first entry that does not fit");
        command.Add(file);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, options =>
        {
            AuditVerifier verifier;
            var path = parse.GetValue(file);
            if (path is not null)
            {
                if (!File.Exists(path)) return UserCommand.Fail(ExitCodes.NotFound, $"no such file: {path}");
                verifier = new AuditVerifier();
                var number = 0;
                foreach (var line in File.ReadLines(path))
                    if (!verifier.AddLine(++number, line)) break;
                verifier.Finish();
            }
            else verifier = OpenLog(options).Verify();
            var what = path ?? Path.GetFullPath(options.DataDirectory);
            if (verifier.Problem is { } problem) return UserCommand.Fail(ExitCodes.Failure, $"{what}: {problem}");
            if (verifier.LastHead is not { } head)
            {
                Console.WriteLine($"{what}: the log is empty.");
                return ExitCodes.Ok;
            }
            Console.WriteLine($"Intact: {verifier.Entries} entries; signed tree head of size {head.Size}, {head.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC, key {head.KeyText}.");
            if (verifier.Entries > head.Size)
                Console.WriteLine($"Entries {head.Size} to {verifier.Entries - 1} are not covered by a signed head yet (the server signs one within a minute).");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Monitor()
    {
        var url = new Argument<string>("URL") { Description = "The server's HTTP address, e.g. https://chat.example.org (or the full .well-known/candor/audit URL)" };
        var state = new Option<string?>("--state") { Description = "Where the last head seen is kept (default ~/.candor/audit-HOST-PORT.json)" };
        var command = new Command("monitor", "Fetch the signed head of a running server and prove that the log only grew since the head seen last; exit 1 on a fork or rollback");
        command.Add(url);
        command.Add(state);
        command.SetAction(async (parse, cancellation) =>
        {
            var text = parse.GetValue(url)!.TrimEnd('/');
            if (!text.EndsWith(AuditEndpoints.Path, StringComparison.Ordinal)) text += AuditEndpoints.Path;
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                return UserCommand.Fail(ExitCodes.Usage, $"not an http(s) URL: {parse.GetValue(url)}");
            var statePath = parse.GetValue(state) ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".candor", $"audit-{uri.Host}-{uri.Port}.json");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            try
            {
                var head = TreeHead.Parse(await http.GetStringAsync(uri, cancellation));
                if (!head.SignatureValid) return UserCommand.Fail(ExitCodes.Failure, $"{uri}: the tree head of size {head.Size} does not carry a valid signature");
                TreeHead? seen = File.Exists(statePath) ? TreeHead.Parse(File.ReadAllText(statePath)) : null;
                if (seen is not null)
                {
                    var when = $"the head of size {seen.Size} signed {seen.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC (kept in {statePath})";
                    if (seen.KeyText != head.KeyText)
                        return UserCommand.Fail(ExitCodes.Failure, $"FORK: the log is now signed with key {head.KeyText}, {when} with key {seen.KeyText}");
                    if (head.Size < seen.Size)
                        return UserCommand.Fail(ExitCodes.Failure, $"ROLLBACK: the server shows a log of {head.Size} entries, smaller than {when}");
                    if (head.Size == seen.Size && !head.Root.AsSpan().SequenceEqual(seen.Root))
                        return UserCommand.Fail(ExitCodes.Failure, $"FORK: two different logs of {head.Size} entries were signed: the server's now, and {when}");
                    if (head.Size > seen.Size)
                    {
                        var consistency = await http.GetStringAsync($"{uri}/consistency?from={seen.Size}&to={head.Size}", cancellation);
                        using var document = JsonDocument.Parse(consistency);
                        var proof = document.RootElement.GetProperty("proof").EnumerateArray().Select(p => Convert.FromBase64String(p.GetString()!)).ToList();
                        if (!MerkleTree.VerifyConsistency(seen.Size, head.Size, seen.Root, head.Root, proof))
                            return UserCommand.Fail(ExitCodes.Failure, $"FORK: the log of {head.Size} entries does not extend {when}: entries were changed or removed");
                    }
                }
                if (seen is null || head.Size > seen.Size || head.Time > seen.Time)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(statePath))!);
                    File.WriteAllText(statePath + ".tmp", head.ToJson() + "\n");
                    File.Move(statePath + ".tmp", statePath, overwrite: true);
                }
                Console.WriteLine(seen is null
                    ? $"OK: first head kept: {head.Size} entries, signed {head.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC by key {head.KeyText}."
                    : $"OK: {head.Size} entries, signed {head.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC; proven to extend the {seen.Size} entries seen before.");
                return ExitCodes.Ok;
            }
            catch (HttpRequestException e)
            {
                return UserCommand.Fail(ExitCodes.Failure, $"{uri}: {e.Message}");
            }
            catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
            {
                return UserCommand.Fail(ExitCodes.Failure, $"{uri}: not a Candor audit log answer ({e.Message})");
            }
        });
        return command;
    }

    private static void WriteLine(StreamWriter file, Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, AuditEntry.JsonOptions)) write(json);
        file.Write(Encoding.UTF8.GetString(buffer.ToArray()));
        file.Write('\n');
    }

    private static AuditLog OpenLog(ServerOptions options)
    {
        UserCommand.RequireData(options);
        return AuditLog.Open(options);
    }

    private static Task<int> Run(ParseResult parse, CommonOptions common, Func<ServerOptions, int> action)
    {
        try
        {
            return Task.FromResult(action(common.Load(parse)));
        }
        catch (OptionsException e)
        {
            return Task.FromResult(UserCommand.Fail(ExitCodes.Usage, e.Message));
        }
        catch (Exception e) when (e is KeyException or IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            return Task.FromResult(UserCommand.Fail(ExitCodes.Failure, e.Message));
        }
    }
}
