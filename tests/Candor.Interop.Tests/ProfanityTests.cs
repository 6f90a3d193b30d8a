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

    /// <summary>
    /// Legacy OMEMO (eu.siacs.conversations.axolotl, which profanity speaks with libsignal-protocol-c) between
    /// profanity and Candor's own client: bob's `candor send --require-e2e` finds only alice's legacy device list,
    /// starts a session from her bundle and profanity shows the message decrypted; profanity answers with
    /// /omemo start, and `candor listen --json` prints the answer decrypted as legacy.
    /// </summary>
    [Fact]
    public async Task Profanity_and_candor_exchange_legacy_OMEMO_both_ways()
    {
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var tag = Guid.NewGuid().ToString("N")[..8];
        var toAlice = $"candor to profanity {tag}";
        var toBob = $"profanity to candor {tag}";
        await using var profanity = await ProfanitySession.LoginAsync(server, "alice@localhost", "alice-secret");
        // profanity publishes its OMEMO nodes with the default access model 'presence': bob becomes a contact first.
        await using (var subscribe = ChildProcess.Start(Tools.Python, [Tools.Script("subscribe.py"), CandorServer.Host,
            server.C2sPort.ToString(), "bob@localhost", "bob-secret", "alice@localhost"]))
        {
            Assert.True(await profanity.Tmux.WaitForAnyAsync(ProfanitySession.StepTimeout, "bob@localhost") is not null,
                await profanity.ContextAsync("profanity showed no subscription request", subscribe.Output));
            await profanity.Tmux.SendLineAsync("/sub allow bob@localhost");
            Assert.True(await subscribe.WaitForExitAsync(ProfanitySession.StepTimeout) && subscribe.ExitCode == 0,
                await profanity.ContextAsync("bob's subscription was not approved", subscribe.Output));
        }
        await profanity.Tmux.SendLineAsync("/omemo trustmode blind");
        await profanity.Tmux.SendLineAsync("/omemo gen");
        Assert.True(await profanity.Tmux.WaitForAnyAsync(TimeSpan.FromSeconds(120), "materials generated") is not null,
            await profanity.ContextAsync("profanity did not generate its OMEMO keys"));

        // profanity publishes its device list just after generating the keys: --require-e2e refuses until it is there.
        ProcessResult send;
        var attempt = 0;
        do
        {
            if (attempt > 0) await Task.Delay(1000);
            send = await ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost, OmemoInteropTests.CandorArguments(server,
                "send", "--jid", "bob@localhost", "--require-e2e", "alice@localhost", toAlice), TimeSpan.FromSeconds(60),
                OmemoInteropTests.Environment(server, "bob-secret"));
        } while (!send.Succeeded && send.Output.Contains("no OMEMO device") && ++attempt < 15);
        output.WriteLine(send.Describe());
        Assert.True(send.Succeeded, await profanity.ContextAsync("candor send failed", send.Describe()));
        Assert.Contains("sent encrypted (OMEMO)", send.Output);

        Assert.True(await profanity.Tmux.WaitForAnyAsync(ProfanitySession.StepTimeout, "(win 2)") is not null,
            await profanity.ContextAsync("profanity showed no message from bob"));
        await profanity.Tmux.SendLineAsync("/win 2");
        Assert.True(await profanity.Tmux.WaitForAnyAsync(ProfanitySession.StepTimeout, toAlice) is not null,
            await profanity.ContextAsync("profanity did not show the decrypted message"));

        // bob's listen also prints the server's notices of bob's earlier logins (kept offline): the answer is the line from alice.
        await using var listen = ChildProcess.Start(CandorServer.Launcher.DotnetHost, OmemoInteropTests.CandorArguments(server,
            "listen", "--jid", "bob@localhost", "--json"), OmemoInteropTests.Environment(server, "bob-secret"));
        Assert.True(await listen.WaitForOutputAsync("listening as", TimeSpan.FromSeconds(60)), $"listen did not start\n{listen.Output}");
        await profanity.Tmux.SendLineAsync("/omemo start bob@localhost");
        await Task.Delay(1000);
        await profanity.Tmux.SendLineAsync(toBob);
        Assert.True(await listen.WaitForOutputAsync($"\"from\":\"alice@localhost", TimeSpan.FromSeconds(60)),
            await profanity.ContextAsync("listen printed nothing from alice", listen.Output));
        output.WriteLine(listen.Output);
        output.WriteLine(await profanity.Tmux.CaptureAsync());
        var json = JsonDocument.Parse(listen.Output.Split('\n').First(l => l.StartsWith("{\"from\":\"alice@localhost", StringComparison.Ordinal))).RootElement;
        Assert.True(toBob == json.GetProperty("body").GetString(), await profanity.ContextAsync("listen printed another message", listen.Output));
        Assert.True(json.GetProperty("encrypted").GetBoolean());
        Assert.Equal("legacy", json.GetProperty("omemo").GetString());
    }
}
