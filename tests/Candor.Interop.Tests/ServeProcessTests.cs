using Candor.Interop.Tests.Infrastructure;
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
}
