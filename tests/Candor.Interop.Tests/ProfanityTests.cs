using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>profanity (Debian package, libstrophe) driven in tmux against a real candor server.</summary>
[Trait("Category", "Interop")]
public sealed class ProfanityTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// profanity logs in over STARTTLS (accepting the self-signed certificate at its prompt) and
    /// sends a chat message; a slixmpp receiver (scripts/receive_one.py) must get the exact text.
    /// </summary>
    [Fact]
    public async Task Profanity_sends_a_message_that_slixmpp_receives()
    {
        var profanity = Tools.RequireCommand("profanity", "profanity");
        Tools.RequireCommand("tmux", "tmux");
        await Tools.RequireSlixmppAsync();

        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var text = $"hello from profanity {Guid.NewGuid():N} <&> ünïcödé";

        // The receiver logs in first so the message is delivered live, not from offline storage.
        await using var receiver = ChildProcess.Start(Tools.Python,
            [Tools.Script("receive_one.py"), CandorServer.Host, server.C2sPort.ToString(),
             "bob@localhost", "bob-secret", "--from", "alice@localhost", "--expect", text,
             "--mechanism", "SCRAM-SHA-256", "--timeout", "90"]);
        Assert.True(await receiver.WaitForOutputAsync("READY", StepTimeout),
            $"receiver did not log in\n{receiver.Output}\n{server.Transcript}");

        // A fresh HOME: no profanity configuration, accounts, trusted certificates or logs from before.
        var home = Directory.CreateTempSubdirectory("candor-profanity-").FullName;
        try
        {
            var environment = new Dictionary<string, string?>
            {
                ["HOME"] = home,
                ["XDG_CONFIG_HOME"] = Path.Combine(home, ".config"),
                ["XDG_DATA_HOME"] = Path.Combine(home, ".local", "share"),
                ["XDG_RUNTIME_DIR"] = null,
            };
            await using var tmux = await Tmux.StartAsync(profanity, environment, home);

            async Task<string> Context(string what) =>
                $"{what}\n--- profanity screen ---\n{await tmux.CaptureAsync()}\n--- profanity log ---\n{ProfanityLog(home)}" +
                $"\n--- receiver ---\n{receiver.Output}\n{server.Transcript}";

            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "Type '/help'", "/help for help") is not null,
                await Context("profanity did not start"));

            await tmux.SendLineAsync($"/connect alice@localhost server {CandorServer.Host} port {server.C2sPort}");
            Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "Enter password:") is not null,
                await Context("profanity did not ask for the password"));
            await tmux.SendLineAsync("alice-secret");

            // Default 'tls force': STARTTLS is required; the self-signed certificate is accepted
            // at profanity's prompt with /tls allow (once, not stored).
            const string LoggedIn = "logged in successfully";
            const string CertificatePrompt = "Use '/tls allow' to accept this certificate";
            string[] failures = ["Login failed", "Connection failed", "Disconnected", "lost connection", "[program exited"];
            var seen = await tmux.WaitForAnyAsync(StepTimeout, [LoggedIn, CertificatePrompt, .. failures]);
            if (seen == CertificatePrompt)
            {
                await tmux.SendLineAsync("/tls allow");
                seen = await tmux.WaitForAnyAsync(StepTimeout, [LoggedIn, .. failures]);
            }
            Assert.True(seen == LoggedIn, await Context($"profanity did not log in (saw: {seen ?? "nothing"})"));
            var screen = await tmux.CaptureAsync();
            Assert.True(screen.Contains("[TLS]", StringComparison.Ordinal), await Context("profanity's status bar does not show [TLS]"));

            await tmux.SendLineAsync($"/msg bob@localhost {text}");

            Assert.True(await receiver.WaitForExitAsync(TimeSpan.FromSeconds(60)),
                await Context("receiver did not finish"));
            Assert.True(receiver.ExitCode == 0, await Context($"receiver exited with {receiver.ExitCode}"));
            var received = receiver.Output.Split('\n').FirstOrDefault(l => l.StartsWith("RECEIVED ", StringComparison.Ordinal));
            Assert.True(received is not null, await Context("receiver printed no RECEIVED line"));
            using var json = JsonDocument.Parse(received!["RECEIVED ".Length..]);
            Assert.Equal(text, json.RootElement.GetProperty("body").GetString());
            Assert.StartsWith("alice@localhost/", json.RootElement.GetProperty("from").GetString());

            await tmux.SendLineAsync("/quit");
            output.WriteLine(await tmux.CaptureAsync());
        }
        finally
        {
            try
            {
                Directory.Delete(home, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static string ProfanityLog(string home)
    {
        var path = Path.Combine(home, ".local", "share", "profanity", "logs", "profanity.log");
        return File.Exists(path) ? File.ReadAllText(path) : $"(no {path})";
    }
}
