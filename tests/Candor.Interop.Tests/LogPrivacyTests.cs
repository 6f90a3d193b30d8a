using System.Text.Json;
using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// The server's log at its most verbose, in the JSON format for collectors, after a scripted session whose
/// message bodies, roster names and passwords carry markers: every entry is one JSON object, and no marker appears.
/// </summary>
public sealed class LogPrivacyTests(ITestOutputHelper output)
{
    private const string BodyMarker = "quokka-saffron-7741";
    private const string NameMarker = "ibex-cobalt-2218";
    private const string PasswordMarker = "lynx-amber-9902";

    [Fact]
    public async Task A_trace_level_json_log_of_a_session_holds_no_message_content_roster_name_or_password()
    {
        await using var server = await CandorServer.StartAsync(output, ["--log-level", "Trace", "--log-format", "json"]);
        await server.AddUserAsync("alice@localhost", $"{PasswordMarker}-alice");
        await server.AddUserAsync("bob@localhost", $"{PasswordMarker}-bob");
        var bob = Jid.Parse("bob@localhost");
        await using (var alice = await SealedStorageInteropTests.ConnectAsync(server, "alice@localhost/desk", $"{PasswordMarker}-alice"))
        {
            await alice.SetRosterItemAsync(bob, $"{NameMarker} bob", [$"{NameMarker} group"]);
            await using (var online = await SealedStorageInteropTests.ConnectAsync(server, "bob@localhost/desk", $"{PasswordMarker}-bob"))
            {
                var received = SealedStorageInteropTests.Received(online, $"{BodyMarker} online");
                await alice.SendMessageAsync(bob, $"{BodyMarker} online");
                await received.WaitAsync(TimeSpan.FromSeconds(30));
            }
            await alice.SendMessageAsync(bob, $"{BodyMarker} offline");
            await alice.PingAsync();
        }
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var wrong = await SealedStorageInteropTests.ConnectAsync(server, "bob@localhost/desk", $"{PasswordMarker}-wrong");
        });
        await server.StopAsync();

        var log = server.Output;
        var entries = log.Split('\n').Where(l => l.StartsWith('{')).ToList();
        // The logins, sessions and failed login above, and at least one entry below Information: the level took effect.
        Assert.True(entries.Count >= 5 && entries.Any(e => e.Contains("\"LogLevel\":\"Debug\"") || e.Contains("\"LogLevel\":\"Trace\"")),
            $"expected the trace log in JSON\n{log}");
        foreach (var entry in entries)
        {
            using var json = JsonDocument.Parse(entry);
            Assert.True(json.RootElement.TryGetProperty("LogLevel", out _), entry);
            Assert.True(json.RootElement.TryGetProperty("Timestamp", out _), entry);
        }
        foreach (var marker in new[] { BodyMarker, NameMarker, PasswordMarker })
            Assert.DoesNotContain(marker, log);
    }
}
