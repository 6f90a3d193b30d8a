using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>slixmpp (Debian python3-slixmpp) against a real candor server.</summary>
[Trait("Category", "Interop")]
public sealed class SlixmppTests(ITestOutputHelper output)
{
    /// <summary>
    /// scripts/two_users.py: STARTTLS with the self-signed certificate, SCRAM-SHA-256 only,
    /// mutual subscription, presence both ways, chat both ways, then an offline message
    /// delivered with a XEP-0203 delay on the next login.
    /// </summary>
    [Fact]
    public async Task Two_users_subscribe_chat_and_get_offline_messages()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("two_users.py"), CandorServer.Host, server.C2sPort.ToString(),
             "alice@localhost", "alice-secret", "bob@localhost", "bob-secret",
             "--mechanism", "SCRAM-SHA-256", "--timeout", "15"],
            TimeSpan.FromMinutes(4));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"two_users.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }

    /// <summary>
    /// scripts/mam_paging.py: slixmpp's xep_0313 plugin pages through an archive of 65 messages forward (RSM after) and
    /// backward (RSM before) in pages of 25, and filters it by 'with' (a bare and a full JID) and by start and end time.
    /// </summary>
    [Fact]
    public async Task Mam_pages_through_the_archive_both_ways_and_filters_by_with_and_time()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var name in new[] { "alice", "bob", "carol" })
            await server.AddUserAsync($"{name}@localhost", "pw-" + name);

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("mam_paging.py"), CandorServer.Host, server.C2sPort.ToString(), CandorServer.Domain, "pw-",
             "--count", "60", "--page", "25", "--timeout", "20"],
            TimeSpan.FromMinutes(4));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"mam_paging.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("4 backward: ok", result.Output);
        Assert.Contains("PASS", result.Output);
    }

    /// <summary>
    /// scripts/push_app_server.py: a slixmpp client acting as a XEP-0357 app server gets the notification for a
    /// message to an account whose phone enabled push and went away: from the account, to the phone's node, a
    /// summary counting one message, without the sender or the text.
    /// </summary>
    [Fact]
    public async Task A_slixmpp_app_server_gets_a_push_summary_without_sender_or_text()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        foreach (var name in new[] { "alice", "bob", "pushapp" })
            await server.AddUserAsync($"{name}@localhost", name + "-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("push_app_server.py"), CandorServer.Host, server.C2sPort.ToString(),
             "alice@localhost/phone", "alice-secret", "bob@localhost/desk", "bob-secret", "pushapp@localhost/app", "pushapp-secret"],
            TimeSpan.FromMinutes(3));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"push_app_server.py failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }

    /// <summary>
    /// scripts/channel_binding.py: slixmpp chooses its own mechanism. It binds -PLUS with tls-unique only and
    /// ignores XEP-0440, so each -PLUS attempt must fail at once with &lt;malformed-request/&gt; naming RFC 5802's
    /// unsupported-channel-binding-type, and the login then succeed with plain SCRAM on the same stream.
    /// </summary>
    [Fact]
    public Task Slixmpp_falls_back_cleanly_from_a_channel_binding_type_the_server_does_not_offer() =>
        RunWithOneAccountAsync("channel_binding.py", "carol@localhost/cb");

    /// <summary>scripts/server_disco.py: the server's disco#info lists jabber:iq:private (XEP-0049), where clients look.</summary>
    [Fact]
    public Task Server_disco_info_lists_private_xml_storage() => RunWithOneAccountAsync("server_disco.py", "dave@localhost/disco");

    /// <summary>scripts/own_presence.py: initial presence and an update come back to the resource that sent them (RFC 6121 §4.2.2, §4.4.2).</summary>
    [Fact]
    public Task Own_presence_comes_back_to_the_sending_resource() => RunWithOneAccountAsync("own_presence.py", "erin@localhost/self");

    /// <summary>Runs a script that takes HOST PORT JID PASSWORD against a fresh server with that one account.</summary>
    private async Task RunWithOneAccountAsync(string script, string fullJid)
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        var bare = fullJid[..fullJid.IndexOf('/')];
        var password = bare[..bare.IndexOf('@')] + "-secret";
        await server.AddUserAsync(bare, password);

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script(script), CandorServer.Host, server.C2sPort.ToString(), fullJid, password], TimeSpan.FromMinutes(2));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"{script} failed\n{result.Describe()}\n{server.Transcript}");
        Assert.Contains("PASS", result.Output);
    }
}
