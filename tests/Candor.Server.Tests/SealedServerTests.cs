using System.Text.Json;
using Candor.Client;
using Candor.Server.Accounts;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;
using Microsoft.Data.Sqlite;

namespace Candor.Server.Tests;

/// <summary>Sealed storage under a running server, over real sockets: rotation under load, a moved record, migration.</summary>
public sealed class SealedServerTests
{
    [Fact]
    public async Task Key_rotation_beside_a_running_server_under_load_loses_no_message()
    {
        var server = await ServerFixture.StartAsync(o => o.MaxOfflineMessages = 100_000);
        try
        {
            var bob = await server.CreateUserAsync("bob");
            await using var alice = await server.OnlineClientAsync("alice");
            var oldKey = ((SealedStorage)server.Host.Server.Storage).Keys.Current;

            // What 'candor key rotate' does, from its own opening of the same data directory.
            await using var rotator = await SealedStorage.OpenAsync(new ServerOptions { DataDirectory = server.DataDirectory });
            var rotation = Task.Run(async () =>
            {
                await Task.Delay(300);
                return await rotator.RotateAsync(serverRunning: true, _ => { });
            });
            var sent = 0;
            // Messages to the offline bob are sealed into the offline store before, during and after the rotation.
            while (!rotation.IsCompleted || sent < 200)
            {
                await alice.SendMessageAsync(ServerFixture.JidOf(bob), "load " + sent, requestReceipt: false);
                if (++sent % 50 == 0) await alice.PingAsync();
            }
            await alice.PingAsync();
            var (from, to, resealed) = await rotation;
            Assert.Equal(oldKey.Id, from.Id);
            Assert.True(resealed > 0);

            Assert.Equal([to.Id], (await rotator.CountByKeyAsync()).Keys);
            Assert.False(File.Exists(rotator.Files.NextPath));
            var serverKeys = ((SealedStorage)server.Host.Server.Storage).Keys;
            await WaitUntilAsync(() => serverKeys.All.Count == 1);
            Assert.Equal(to.Id, serverKeys.Current.Id);

            await using var reader = await server.ClientAsync(bob);
            await reader.SendPresenceAsync();
            for (var i = 0; i < sent; i++)
                Assert.Equal("load " + i, (await reader.ExpectAsync<ChatMessage>()).Body);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_vcard_copied_into_another_accounts_row_is_an_error_to_the_requester_not_the_other_persons_card()
    {
        var server = await ServerFixture.StartAsync();
        try
        {
            var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
            await using (var client = await server.ClientAsync(alice))
                await client.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>alice-private-name</FN></vCard></iq>");
            await using (var client = await server.ClientAsync(bob))
                await client.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>bob</FN></vCard></iq>");

            var storage = (SealedStorage)server.Host.Server.Storage;
            using (var connection = new SqliteConnection($"Data Source={server.DatabasePath}"))
            {
                connection.Open();
                using var command = connection.CreateCommand();
                command.CommandText = "UPDATE keyval SET value = (SELECT value FROM keyval WHERE store = 'vcard' AND user = $alice) WHERE store = 'vcard' AND user = $bob";
                command.Parameters.AddWithValue("$alice", storage.Hash(alice));
                command.Parameters.AddWithValue("$bob", storage.Hash(bob));
                Assert.Equal(1, command.ExecuteNonQuery());
            }

            await using var carol = await server.OnlineClientAsync("carol");
            var error = await Assert.ThrowsAsync<XmppStanzaException>(() => carol.IqAsync($"<iq type='get' to='{bob}@localhost'><vCard xmlns='vcard-temp'/></iq>"));
            error.Stanza.AssertError("internal-server-error");
            Assert.DoesNotContain("alice-private-name", error.Stanza.ToString());
            // The requester's stream goes on; alice's own card is still hers.
            var own = await carol.IqAsync($"<iq type='get' to='{alice}@localhost'><vCard xmlns='vcard-temp'/></iq>");
            Assert.Contains("alice-private-name", own.ToString());
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_plaintext_database_of_an_earlier_version_is_sealed_on_first_start_and_every_owner_reads_their_data()
    {
        const string offline = "left for you before the upgrade";
        var server = await ServerFixture.StartAsync(o =>
        {
            // What an earlier Candor left in the data directory: no key, everything in plaintext.
            var plain = new SqliteStorage(Path.Combine(o.DataDirectory, "candor.db"));
            var accounts = new AccountStore(plain, 4096);
            Assert.True(accounts.CreateAsync("olivia", ServerFixture.Password("olivia")).Result);
            Assert.True(accounts.CreateAsync("pat", ServerFixture.Password("pat")).Result);
            plain.OpenKeyValue("vcard").SetAsync("olivia", "<vCard xmlns='vcard-temp'><FN>Olivia from before</FN></vCard>").Wait();
            plain.OpenMap("roster").SetAsync("olivia", "pat@localhost",
                JsonSerializer.Serialize(new Modules.Roster.RosterItem { Jid = "pat@localhost", Name = "Pat from before", Subscription = Modules.Roster.Subscription.Both }, Modules.Roster.RosterJson.Default.RosterItem)).Wait();
            plain.OpenArchive("offline").AppendAsync("olivia", DateTimeOffset.UtcNow, "pat@localhost",
                $"<message xmlns='jabber:client' from='pat@localhost/old' to='olivia@localhost' type='chat'><body>{offline}</body></message>").Wait();
            plain.DisposeAsync().AsTask().Wait();
        });
        try
        {
            Assert.Equal(5, ((SealedStorage)server.Host.Server.Storage).Migrated);
            await using (var olivia = await server.ClientAsync("olivia"))
            {
                Assert.Equal("Pat from before", Assert.Single(await olivia.GetRosterAsync()).Name);
                Assert.Contains("Olivia from before", (await olivia.IqAsync("<iq type='get'><vCard xmlns='vcard-temp'/></iq>")).ToString());
                await olivia.SendPresenceAsync();
                Assert.Equal(offline, (await olivia.ExpectAsync<ChatMessage>()).Body);
            }
            await using (var pat = await server.ClientAsync("pat")) await pat.PingAsync();
            await server.StopAsync();
            SqliteConnection.ClearAllPools();
            foreach (var file in Directory.EnumerateFiles(server.DataDirectory, "*", SearchOption.AllDirectories))
            {
                var text = System.Text.Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file));
                Assert.DoesNotContain("from before", text);
                Assert.DoesNotContain("olivia", text);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(50);
        }
    }
}
