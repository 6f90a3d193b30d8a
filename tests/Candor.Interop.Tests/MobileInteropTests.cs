using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>The features phones and several devices need (issue 14), driven by slixmpp's own plugins and profanity.</summary>
[Trait("Category", "Interop")]
public sealed class MobileInteropTests(ITestOutputHelper output)
{
    private async Task RunScriptAsync(string script, params string[] extra)
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script(script), CandorServer.Host, server.C2sPort.ToString(),
             "alice@localhost", "alice-secret", "bob@localhost", "bob-secret", .. extra],
            TimeSpan.FromMinutes(3));
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"{script} failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }

    /// <summary>scripts/carbons.py: slixmpp's xep_0280 plugin enables carbons on two resources and sees sent and received copies.</summary>
    [Fact]
    public Task Slixmpp_carbons_plugin_sees_sent_and_received_copies() => RunScriptAsync("carbons.py");

    /// <summary>scripts/blocking.py: slixmpp's xep_0191 plugin blocks and unblocks; each side is told what the XEP says.</summary>
    [Fact]
    public Task Slixmpp_blocking_plugin_blocks_and_unblocks() => RunScriptAsync("blocking.py");

    /// <summary>scripts/stream_management.py: slixmpp's xep_0198 plugin resumes after a cut connection; every message once, in order.</summary>
    [Fact]
    public Task Slixmpp_stream_management_plugin_resumes_after_a_cut_connection() => RunScriptAsync("stream_management.py");

    /// <summary>scripts/client_state.py: slixmpp's xep_0352 plugin goes inactive; presence waits, coalesced, until a message.</summary>
    [Fact]
    public Task Slixmpp_client_state_plugin_holds_presence_while_inactive() => RunScriptAsync("client_state.py");

    /// <summary>
    /// scripts/kill_chat.py (issue 14's kill test): a steady two-way chat with stream management while the server is
    /// killed with SIGKILL and started again on the same data; every message the server acknowledged with &lt;a/&gt;
    /// is received, stored offline or in the recipient's archive (ArchiveDefault always), as docs/SECURITY.md promises.
    /// </summary>
    [Fact]
    public async Task A_kill_9_under_a_steady_chat_loses_no_message_the_server_acknowledged()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output, environment: new Dictionary<string, string?> { ["CANDOR__ARCHIVEDEFAULT"] = "always" });
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var portFile = Path.Combine(Directory.CreateTempSubdirectory("candor-kill-").FullName, "port");
        await using var chat = ChildProcess.Start(Tools.Python,
            [Tools.Script("kill_chat.py"), CandorServer.Host, server.C2sPort.ToString(),
             "alice@localhost", "alice-secret", "bob@localhost", "bob-secret", "--port-file", portFile]);
        Assert.True(await chat.WaitForOutputAsync("TRAFFIC", TimeSpan.FromSeconds(90)), $"no steady chat\n{chat.Output}\n{server.Transcript}");
        await server.KillHardAsync();
        await server.StartAsync();
        await File.WriteAllTextAsync(portFile, server.C2sPort.ToString());
        Assert.True(await chat.WaitForExitAsync(TimeSpan.FromMinutes(3)), $"kill_chat.py did not finish\n{chat.Output}\n{server.Transcript}");
        output.WriteLine(chat.Output);
        Assert.True(chat.ExitCode == 0 && chat.Output.Contains("PASS"), $"kill_chat.py failed\n{chat.Output}\n{server.Transcript}");
        Directory.Delete(Path.GetDirectoryName(portFile)!, recursive: true);
    }

    /// <summary>
    /// Two profanity clients on one account (issue 14's carbons test): both log in without a carbons error, and a
    /// message typed in the first shows in the second (a sent carbon), while slixmpp receives it as bob.
    /// </summary>
    [Fact]
    public async Task A_message_sent_from_one_profanity_shows_in_another_on_the_same_account()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        var text = $"carbon copy {Guid.NewGuid():N}";
        await using var receiver = ChildProcess.Start(Tools.Python,
            [Tools.Script("receive_one.py"), CandorServer.Host, server.C2sPort.ToString(),
             "bob@localhost", "bob-secret", "--from", "alice@localhost", "--expect", text, "--timeout", "90"]);
        Assert.True(await receiver.WaitForOutputAsync("READY", ProfanitySession.StepTimeout),
            $"receiver did not log in\n{receiver.Output}\n{server.Transcript}");

        await using var first = await ProfanitySession.LoginAsync(server, "alice@localhost", "alice-secret");
        await using var second = await ProfanitySession.LoginAsync(server, "alice@localhost", "alice-secret");
        // Give profanity time to ask for carbons and print any error about it.
        await Task.Delay(TimeSpan.FromSeconds(2));
        foreach (var profanity in new[] { first, second })
        {
            var screen = await profanity.Tmux.CaptureAsync();
            Assert.True(!screen.Contains("carbons", StringComparison.OrdinalIgnoreCase), await profanity.ContextAsync("profanity reported a carbons problem"));
        }
        await first.Tmux.SendLineAsync($"/msg bob@localhost {text}");
        Assert.True(await receiver.WaitForExitAsync(TimeSpan.FromSeconds(60)), await first.ContextAsync("bob did not receive the message", receiver.Output));
        Assert.True(receiver.ExitCode == 0, await first.ContextAsync($"receiver exited with {receiver.ExitCode}", receiver.Output));

        // The second profanity opens a window for the conversation with bob (after the server's login-notice window,
        // whose number depends on arrival order): look through its windows for the copy.
        string? seen = null;
        for (var attempt = 0; attempt < 10 && seen is null; attempt++)
            foreach (var window in new[] { 2, 3, 4 })
            {
                await second.Tmux.SendLineAsync($"/win {window}");
                seen = await second.Tmux.WaitForAnyAsync(TimeSpan.FromSeconds(1), text);
                if (seen is not null) break;
            }
        Assert.True(seen is not null, await second.ContextAsync("the second profanity did not show the sent message"));
        output.WriteLine(await second.Tmux.CaptureAsync());
    }
}
