using System.Collections.Concurrent;
using System.Runtime.Versioning;
using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// <c>candor backup</c> of a running server under load and <c>candor restore</c> into a new data directory: a server
/// started there with the same master key knows every account, roster item and stored message.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class BackupCommandTests(ITestOutputHelper output)
{
    private const int Accounts = 5;
    private const int BeforeBackup = 100;

    [Fact]
    public async Task A_backup_taken_under_load_restores_every_account_roster_and_stored_message()
    {
        await using var server = await CandorServer.StartAsync(output);
        for (var i = 0; i < Accounts; i++) await server.AddUserAsync($"user{i}@localhost", $"pw{i}");
        var bob = Jid.Parse("user1@localhost");
        var backup = Path.Combine(Directory.CreateTempSubdirectory("candor-backup-").FullName, "candor.backup");
        await using (var alice = await SealedStorageInteropTests.ConnectAsync(server, "user0@localhost/desk", "pw0"))
        {
            await alice.SetRosterItemAsync(bob, "Bob", ["Friends"]);
            for (var i = 0; i < BeforeBackup; i++) await alice.SendMessageAsync(bob, $"before {i}");
            await alice.PingAsync();

            // Under load: alice keeps writing offline messages while the backup runs.
            using var stop = new CancellationTokenSource();
            var sent = 0;
            var load = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested && sent < 500)
                {
                    await alice.SendMessageAsync(bob, $"during {sent}");
                    sent++;
                }
            });
            var result = await server.RunCliAsync("backup", "--out", backup);
            await stop.CancelAsync();
            await load;
            output.WriteLine($"{sent} messages sent during the backup");
            Assert.True(result.Succeeded, result.Describe());
            Assert.Contains("master key is NOT in the backup", result.Output);
            Assert.True(sent > 0, "the load did not run while the backup ran");
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(backup));

        var restored = new CandorServer();
        await using (restored)
        {
            var restore = await restored.RunCliAsync("restore", backup);
            Assert.True(restore.Succeeded, restore.Describe());
            Assert.Contains("Now put the master key", restore.Output);
            UserCommandTests.AssertOneLineError(await restored.RunCliAsync("restore", backup), 3, "exists already");
            var keys = Directory.CreateDirectory(Path.Combine(restored.DataDirectory, "keys")).FullName;
            File.Copy(Path.Combine(server.DataDirectory, "keys", "master.key"), Path.Combine(keys, "master.key"));
            // The restored log's heads are signed: the server refuses to start without the key that signed them.
            File.Copy(Path.Combine(server.DataDirectory, "keys", "audit.key"), Path.Combine(keys, "audit.key"));
            await restored.StartAsync();

            for (var i = 0; i < Accounts; i++)
                await using (await SealedStorageInteropTests.ConnectAsync(restored, $"user{i}@localhost/restored", $"pw{i}", presence: false)) { }
            await using (var alice = await SealedStorageInteropTests.ConnectAsync(restored, "user0@localhost/restored", "pw0", presence: false))
            {
                var item = Assert.Single(await alice.GetRosterAsync(), i => i.Jid == bob);
                Assert.Equal("Bob", item.Name);
                Assert.Equal(["Friends"], item.Groups);
            }
            var bodies = new ConcurrentDictionary<string, bool>();
            var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using var offline = await SealedStorageInteropTests.ConnectAsync(restored, "user1@localhost/restored", "pw1", presence: false);
            offline.EventReceived += e =>
            {
                if (e is not ChatMessage { Body: { } body }) return;
                bodies[body] = true;
                if (Enumerable.Range(0, BeforeBackup).All(i => bodies.ContainsKey($"before {i}"))) all.TrySetResult();
            };
            await offline.SendPresenceAsync();
            await all.Task.WaitAsync(TimeSpan.FromSeconds(60)).ContinueWith(_ => { });
            var missing = Enumerable.Range(0, BeforeBackup).Where(i => !bodies.ContainsKey($"before {i}")).ToList();
            Assert.True(missing.Count == 0, $"messages stored before the backup are missing after the restore: {string.Join(", ", missing)}");
            // Messages written during the backup are in it or not, but never half: any one found has its predecessors.
            var during = bodies.Keys.Where(b => b.StartsWith("during ", StringComparison.Ordinal)).Select(b => int.Parse(b[7..])).Order().ToList();
            Assert.Equal(Enumerable.Range(0, during.Count), during);
        }
    }
}
