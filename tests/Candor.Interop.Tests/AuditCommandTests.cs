using System.Diagnostics;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// The operator log from the command line (issue 18): each operator command leaves one entry, an export verifies
/// and any edit, deletion or swap of a line is caught, a monitor holding an earlier head catches a rollback and a
/// rewritten history, and <c>kill -9</c> during a burst of commands never leaves a log that fails to verify.
/// </summary>
public sealed class AuditCommandTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    private static Task<ProcessResult> Candor(params string[] arguments) =>
        ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost, [CandorServer.Launcher.CandorDll, .. arguments], Timeout);

    private static async Task<string[]> EntriesAsync(CandorServer server)
    {
        var show = await server.RunCliAsync("audit", "show");
        Assert.True(show.Succeeded, show.Describe());
        return [.. show.Output.Split('\n').Where(l => l.Length > 6 && char.IsAsciiDigit(l.TrimStart()[0]))];
    }

    private static async Task<string> ExportAsync(CandorServer server, string file)
    {
        var export = await server.RunCliAsync("audit", "export", "--out", file);
        Assert.True(export.Succeeded, export.Describe());
        return file;
    }

    [Fact]
    public async Task Every_operator_command_leaves_one_entry_and_any_edited_deleted_or_swapped_line_is_caught()
    {
        await using var server = await CandorServer.StartAsync(output);
        string[][] commands =
        [
            ["user", "add", "ann@localhost", "--password", "secret-one"],
            ["user", "passwd", "ann@localhost", "--password", "secret-two"],
            ["user", "sessions", "ann@localhost"],
            ["user", "purge-archive", "ann@localhost"],
            ["policy", "reload"],
            ["key", "rotate"],
            ["user", "remove", "ann@localhost"],
        ];
        var entries = await EntriesAsync(server);
        foreach (var command in commands)
        {
            var result = await server.RunCliAsync(command);
            Assert.True(result.Succeeded, result.Describe());
            var after = await EntriesAsync(server);
            Assert.True(after.Length == entries.Length + 1, $"{string.Join(' ', command)} left {after.Length - entries.Length} entries:\n{string.Join('\n', after)}");
            entries = after;
        }
        Assert.Contains("account.password", entries[2]);
        Assert.Contains("account.archive-purge", entries[4]);
        Assert.Contains("policy.reload", entries[5]);
        Assert.Contains("key.rotate", entries[6]);
        var ann = (await server.RunCliAsync("audit", "show", "--account", "ann@localhost")).Output;
        Assert.Equal(5, ann.Split('\n').Count(l => l.Contains("ann@localhost")));
        var everything = string.Join('\n', entries);
        Assert.DoesNotContain("secret-one", everything);
        Assert.DoesNotContain("secret-two", everything);

        var file = await ExportAsync(server, Path.Combine(server.DataDirectory, "audit.jsonl"));
        Assert.DoesNotContain("secret-", File.ReadAllText(file));
        var verified = await Candor("audit", "verify", file);
        Assert.True(verified.Succeeded, verified.Describe());
        Assert.True((await server.RunCliAsync("audit", "verify")).Succeeded);
        var lines = File.ReadAllLines(file);
        Assert.Contains("\"size\"", lines[^1]);

        async Task Rejected(string[] tampered, string what)
        {
            var path = Path.Combine(server.DataDirectory, "tampered.jsonl");
            File.WriteAllLines(path, tampered);
            var result = await Candor("audit", "verify", path);
            Assert.True(result.ExitCode == 1, $"{what}\n{result.Describe()}");
            Assert.Single(result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        for (var i = 0; i < lines.Length; i++)
        {
            // One character in the middle of the line: a digit, a letter of a field or a hash.
            var copy = lines.ToArray();
            var at = copy[i].Length / 2;
            copy[i] = copy[i][..at] + (copy[i][at] == 'A' ? 'B' : 'A') + copy[i][(at + 1)..];
            await Rejected(copy, $"line {i + 1} edited");
            await Rejected([.. lines.Take(i), .. lines.Skip(i + 1)], $"line {i + 1} deleted");
            if (i + 1 < lines.Length)
            {
                copy = lines.ToArray();
                (copy[i], copy[i + 1]) = (copy[i + 1], copy[i]);
                await Rejected(copy, $"lines {i + 1} and {i + 2} swapped");
            }
        }
        // An entry's account changed, with its leaf hash recomputed to match: the signed head still catches it.
        var forged = lines.ToArray();
        var target = Array.FindIndex(forged, l => l.Contains("account.remove"));
        forged[target] = ForgeEntry(forged[target], "ann@localhost", "bob@localhost");
        await Rejected(forged, "entry rewritten with a matching leaf hash");
    }

    /// <summary>Replaces text in an entry line and recomputes its leaf hash, as a forger without the log key would.</summary>
    private static string ForgeEntry(string line, string from, string to)
    {
        using var document = System.Text.Json.JsonDocument.Parse(line.Replace(from, to));
        var entry = Server.Audit.AuditEntry.Parse(document.RootElement);
        using var buffer = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer, Server.Audit.AuditEntry.JsonOptions)) entry.Write(json, leafHash: true);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    [Fact]
    public async Task A_monitor_with_an_earlier_head_catches_a_rollback_and_a_rewritten_history()
    {
        await using var server = await CandorServer.StartAsync(output);
        var state = Path.Combine(server.DataDirectory, "..", $"monitor-{Guid.NewGuid():N}.json");
        var backup = Directory.CreateTempSubdirectory("candor-audit-backup-").FullName;
        try
        {
            Task<ProcessResult> Monitor() => Candor("audit", "monitor", $"http://{CandorServer.Host}:{server.HttpPort}", "--state", state);
            await server.AddUserAsync("cat@localhost", "pw-cat");
            var first = await Monitor();
            Assert.True(first.Succeeded, first.Describe());
            Assert.Contains("first head kept", first.Output);

            // The operator keeps a copy of the data from now, then acts.
            await server.StopAsync();
            foreach (var file in Directory.EnumerateFiles(server.DataDirectory, "candor.db*"))
                File.Copy(file, Path.Combine(backup, Path.GetFileName(file)));
            await server.StartAsync();
            await server.AddUserAsync("dan@localhost", "pw-dan");
            Assert.True((await server.RunCliAsync("user", "remove", "cat@localhost")).Succeeded);
            var grown = await Monitor();
            Assert.True(grown.Succeeded, grown.Describe());
            Assert.Contains("proven to extend", grown.Output);

            // ... and puts the old database back to erase it.
            await server.StopAsync();
            foreach (var file in Directory.EnumerateFiles(server.DataDirectory, "candor.db*")) File.Delete(file);
            foreach (var file in Directory.EnumerateFiles(backup)) File.Copy(file, Path.Combine(server.DataDirectory, Path.GetFileName(file)));
            await server.StartAsync();
            var rollback = await Monitor();
            Assert.True(rollback.ExitCode == 1, rollback.Describe());
            Assert.Contains("ROLLBACK", rollback.Output);

            // Growing the restored log past the size seen does not hide it: it is a different history.
            for (var i = 0; i < 4; i++) await server.AddUserAsync($"eve{i}@localhost", "pw-eve");
            var fork = await Monitor();
            Assert.True(fork.ExitCode == 1, fork.Describe());
            Assert.Contains("FORK", fork.Output);
        }
        finally
        {
            File.Delete(state);
            Directory.Delete(backup, recursive: true);
        }
    }

    [Fact]
    public async Task Kill_9_during_a_burst_of_operator_commands_never_leaves_a_log_that_fails_to_verify()
    {
        await using var server = await CandorServer.StartAsync(output);
        for (var round = 0; round < 3; round++)
        {
            var burst = new List<ChildProcess>();
            for (var i = 0; i < 6; i++)
                burst.Add(ChildProcess.Start(CandorServer.Launcher.DotnetHost,
                    [CandorServer.Launcher.CandorDll, "user", "add", $"r{round}u{i}@localhost", "--password", "pw", "--data", server.DataDirectory]));
            // Let some finish and catch others mid-write, then kill -9 the server and every command still running.
            await Task.Delay(1500 + 400 * round);
            using (var process = Process.GetProcessById(server.ProcessId)) process.Kill();
            foreach (var command in burst)
            {
                command.Kill();
                await command.DisposeAsync();
            }
            await server.StopAsync();
            var verify = await server.RunCliAsync("audit", "verify");
            Assert.True(verify.Succeeded, $"round {round}\n{verify.Describe()}");
            output.WriteLine(verify.Output);
            await server.StartAsync();
        }
        Assert.True((await server.RunCliAsync("audit", "verify")).Succeeded);
    }
}
