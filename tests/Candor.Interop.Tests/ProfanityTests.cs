using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>profanity (Debian package, libstrophe) driven in tmux against a real candor server.</summary>
[Trait("Category", "Interop")]
public sealed class ProfanityTests(ITestOutputHelper output)
{
    /// <summary>
    /// profanity logs in over STARTTLS (accepting the self-signed certificate at its prompt) and
    /// sends a chat message; a slixmpp receiver (scripts/receive_one.py) must get the exact text.
    /// </summary>
    [Fact]
    public async Task Profanity_sends_a_message_that_slixmpp_receives()
    {
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
        Assert.True(await receiver.WaitForOutputAsync("READY", ProfanitySession.StepTimeout),
            $"receiver did not log in\n{receiver.Output}\n{server.Transcript}");

        await using var profanity = await ProfanitySession.LoginAsync(server, "alice@localhost", "alice-secret");
        await profanity.Tmux.SendLineAsync($"/msg bob@localhost {text}");

        Assert.True(await receiver.WaitForExitAsync(TimeSpan.FromSeconds(60)),
            await profanity.ContextAsync("receiver did not finish", receiver.Output));
        Assert.True(receiver.ExitCode == 0, await profanity.ContextAsync($"receiver exited with {receiver.ExitCode}", receiver.Output));
        var received = receiver.Output.Split('\n').FirstOrDefault(l => l.StartsWith("RECEIVED ", StringComparison.Ordinal));
        Assert.True(received is not null, await profanity.ContextAsync("receiver printed no RECEIVED line", receiver.Output));
        using var json = JsonDocument.Parse(received!["RECEIVED ".Length..]);
        Assert.Equal(text, json.RootElement.GetProperty("body").GetString());
        Assert.StartsWith("alice@localhost/", json.RootElement.GetProperty("from").GetString());
        output.WriteLine(await profanity.Tmux.CaptureAsync());
    }

    /// <summary>
    /// Promise 3 seen by an ordinary client: while profanity is logged in, a second client logs in to the same
    /// account (slixmpp, another resource); profanity shows the server's notice as an incoming chat message.
    /// </summary>
    [Fact]
    public async Task Profanity_shows_the_notice_of_a_new_login()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("erin@localhost", "erin-secret");
        await using var profanity = await ProfanitySession.LoginAsync(server, "erin@localhost", "erin-secret");

        var second = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("login_once.py"), CandorServer.Host, server.C2sPort.ToString(), "erin@localhost/intruder", "erin-secret"],
            TimeSpan.FromMinutes(1));
        Assert.True(second.Succeeded, await profanity.ContextAsync("the second login failed", second.Describe()));

        // profanity opens a chat window for the server's message; show it and read the notice there.
        Assert.True(await profanity.Tmux.WaitForAnyAsync(ProfanitySession.StepTimeout, "localhost (win 2)", "localhost") is not null,
            await profanity.ContextAsync("profanity showed no message from the server"));
        await profanity.Tmux.SendLineAsync("/win 2");
        Assert.True(await profanity.Tmux.WaitForAnyAsync(ProfanitySession.StepTimeout, "New login to your account") is not null,
            await profanity.ContextAsync("profanity did not show the login notice"));
        var screen = await profanity.Tmux.CaptureAsync();
        Assert.Contains("intruder", screen);
        Assert.Contains("127.0.0.1", screen);
        output.WriteLine(screen);
    }
}
