using System.Text.RegularExpressions;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>What a running <c>candor serve</c> process is made of.</summary>
public sealed class ServeProcessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_server_watches_no_files_in_its_working_directory_where_its_database_is_written()
    {
        // The test servers run in their data directory, as `candor serve` does by default (./candor-data): a file
        // watcher there (ASP.NET's reload of appsettings.json) woke a thread at every write of the database.
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-pw");
        await using (var alice = await SealedStorageInteropTests.ConnectAsync(server, "alice@localhost/desk", "alice-pw"))
            await alice.PingAsync();
        var pid = server.ProcessId;
        var watchers = Directory.GetFiles($"/proc/{pid}/fd").Count(fd => new FileInfo(fd).LinkTarget == "anon_inode:inotify");
        var threads = Directory.GetDirectories($"/proc/{pid}/task").Select(task => File.ReadAllText(Path.Combine(task, "comm")).Trim()).ToList();
        Assert.True(watchers == 0, $"{watchers} inotify descriptors open\n{server.Transcript}");
        Assert.DoesNotContain(threads, name => name.Contains("File Watch", StringComparison.Ordinal));
        Assert.Contains(threads, name => name.Contains(".NET", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_idle_server_gives_memory_back_after_a_burst_and_goes_on_serving()
    {
        // A burst of a megabyte is enough here; the default waits for 64.
        await using var server = await CandorServer.StartAsync(output, ["--log-level", "Debug"],
            new Dictionary<string, string?> { ["CANDOR__TrimMemoryAfterMegabytes"] = "1" });
        await server.AddUserAsync("alice@localhost", "alice-pw");
        await server.AddUserAsync("bob@localhost", "bob-pw");
        await using var alice = await SealedStorageInteropTests.ConnectAsync(server, "alice@localhost/desk", "alice-pw");
        await using var bob = await SealedStorageInteropTests.ConnectAsync(server, "bob@localhost/desk", "bob-pw");
        var body = new string('x', 8_000);
        for (var i = 0; i < 100; i++) await alice.SendMessageAsync(Jid.Parse("bob@localhost"), body, requestReceipt: false);
        await bob.PingAsync();

        Assert.True(await server.WaitForOutputAsync("memory given back", TimeSpan.FromSeconds(30)), $"no trim after the burst\n{server.Transcript}");
        var trim = Regex.Match(server.Output, @"memory given back to the system, resident (\d+) KiB -> (\d+) KiB");
        output.WriteLine(trim.Value);
        Assert.True(long.Parse(trim.Groups[2].Value) < long.Parse(trim.Groups[1].Value), trim.Value);
        await alice.SendMessageAsync(Jid.Parse("bob@localhost"), "still here", requestReceipt: false);
        await bob.PingAsync();
        await alice.PingAsync();
    }
}
