using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xml;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// <c>candor user ...</c> as an operator runs it: against the data directory of a running server, with
/// configuration from a file and the environment, and bad input answered with one line and a distinct exit code.
/// </summary>
public sealed class UserCommandTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    private static Task<ProcessResult> Candor(string[] arguments, IReadOnlyDictionary<string, string?>? environment = null) =>
        ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost, [CandorServer.Launcher.CandorDll, .. arguments], Timeout, environment);

    internal static void AssertOneLineError(ProcessResult result, int exitCode, string contains)
    {
        Assert.True(result.ExitCode == exitCode, result.Describe());
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line\n{result.Describe()}");
        Assert.Contains(contains, lines[0]);
        Assert.DoesNotContain("   at ", result.Output);
    }

    [Fact]
    public async Task Accounts_are_managed_while_the_server_runs_and_errors_are_one_line_with_their_exit_code()
    {
        await using var server = await CandorServer.StartAsync(output);
        var add = await server.RunCliAsync("user", "add", "zoe@localhost", "--password", "first-secret");
        Assert.True(add.Succeeded, add.Describe());

        AssertOneLineError(await server.RunCliAsync("user", "add", "zoe@localhost", "--password", "x"), 3, "exists already");
        AssertOneLineError(await server.RunCliAsync("user", "add", "zo e@localhost", "--password", "x"), 5, "invalid JID");
        AssertOneLineError(await server.RunCliAsync("user", "passwd", "nobody@localhost", "--password", "x"), 4, "no such user");
        AssertOneLineError(await server.RunCliAsync("user", "remove", "nobody@localhost"), 4, "no such user");
        AssertOneLineError(await server.RunCliAsync("user", "add", "zoe@elsewhere.example", "--password", "x"), 5, "not on this server's domain");

        var list = await server.RunCliAsync("user", "list");
        Assert.True(list.Succeeded, list.Describe());
        Assert.Contains("zoe@localhost", list.Output);

        // The running server sees the account the CLI created, and the changed password.
        Assert.True((await server.RunCliAsync("user", "passwd", "zoe@localhost", "--password", "second-secret")).Succeeded);
        var login = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("login_once.py"), CandorServer.Host, server.C2sPort.ToString(), "zoe@localhost/cli-test", "second-secret"], Timeout);
        Assert.True(login.Succeeded, login.Describe());

        Assert.True((await server.RunCliAsync("user", "remove", "zoe@localhost")).Succeeded);
        Assert.DoesNotContain("zoe@localhost", (await server.RunCliAsync("user", "list")).Output);
    }

    [Fact]
    public async Task Add_from_a_file_creates_every_account_of_the_file_with_a_log_entry_each_and_checks_the_whole_file_first()
    {
        await using var server = await CandorServer.StartAsync(output);
        var dir = Directory.CreateTempSubdirectory("candor-bulk-").FullName;
        try
        {
            var file = Path.Combine(dir, "accounts.txt");
            // Passwords may hold spaces and colons: the first colon ends the JID, which cannot contain one.
            await File.WriteAllTextAsync(file, "# bulk import\n\nann:pass word\nbob@localhost:two:colons\n");
            var add = await server.RunCliAsync("user", "add", "--from-file", file);
            Assert.True(add.Succeeded, add.Describe());
            Assert.Contains("Created 2 accounts.", add.Output);
            foreach (var (jid, password) in new[] { ("ann@localhost/bulk", "pass word"), ("bob@localhost/bulk", "two:colons") })
            {
                // SCRAM-SHA-256 against what the bulk add stored: the server's iterations, usable by the running server.
                var login = await ChildProcess.RunAsync(Tools.Python,
                    [Tools.Script("login_once.py"), CandorServer.Host, server.C2sPort.ToString(), jid, password], Timeout);
                Assert.True(login.Succeeded, login.Describe());
            }
            var annEntry = await LastLogIndexAsync(server, "ann@localhost");
            Assert.NotEqual(annEntry, await LastLogIndexAsync(server, "bob@localhost"));
            Assert.True((await server.RunCliAsync("audit", "verify")).Succeeded);

            // Accounts that exist are named and left as they are; the others are created.
            await File.WriteAllTextAsync(file, "ann:other\ncyd:third\n");
            var again = await server.RunCliAsync("user", "add", "--from-file", file);
            Assert.True(again.ExitCode == 3, again.Describe());
            Assert.Contains("ann@localhost exists already", again.Output);
            Assert.Contains("Created 1 accounts; 1 existed already.", again.Output);
            Assert.Contains("cyd@localhost", (await server.RunCliAsync("user", "list")).Output);

            // A bad line anywhere: one line naming it, and nothing of the file is created.
            await File.WriteAllTextAsync(file, "dee:fine\nno password here\n");
            AssertOneLineError(await server.RunCliAsync("user", "add", "--from-file", file), 2, "accounts.txt:2: expected 'user:password'");
            await File.WriteAllTextAsync(file, "dee:fine\neve@elsewhere.example:x\n");
            AssertOneLineError(await server.RunCliAsync("user", "add", "--from-file", file), 5, "accounts.txt:2: eve@elsewhere.example is not on this server's domain");
            await File.WriteAllTextAsync(file, "dee:fine\ndee@localhost:again\n");
            AssertOneLineError(await server.RunCliAsync("user", "add", "--from-file", file), 2, "dee appears twice");
            Assert.DoesNotContain("dee@localhost", (await server.RunCliAsync("user", "list")).Output);
            AssertOneLineError(await server.RunCliAsync("user", "add", "dee@localhost", "--from-file", file), 2, "--from-file takes neither a JID nor --password");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Passwd_and_remove_beside_a_running_server_announce_and_end_the_accounts_sessions()
    {
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("yan@localhost", "first-secret");
        var online = await ConnectAsync(server, "yan@localhost/desk", "first-secret");
        var notice = NoticeAsync(online);

        Assert.True((await server.RunCliAsync("user", "passwd", "yan@localhost", "--password", "second-secret")).Succeeded);
        var passwd = await LastLogIndexAsync(server, "yan@localhost");
        Assert.Contains($"changed by the operator at", (await notice.WaitAsync(Timeout)).Body);
        Assert.Contains($"(operator log entry #{passwd};", (await notice).Body);
        var ended = await online.Ended.WaitAsync(Timeout);
        Assert.Equal("not-authorized", Assert.IsType<XmppStreamErrorException>(ended).Condition);
        await online.DisposeAsync();

        // No session stayed online to read it: the next login gets the notice too.
        var next = await ConnectAsync(server, "yan@localhost/phone", "second-secret", notice: n => notice = n);
        Assert.Contains("changed by the operator", (await notice.WaitAsync(Timeout)).Body);

        Assert.True((await server.RunCliAsync("user", "remove", "yan@localhost")).Succeeded);
        var removed = Assert.IsType<XmppStreamErrorException>(await next.Ended.WaitAsync(Timeout));
        Assert.Equal("not-authorized", removed.Condition);
        Assert.Contains($"removed by the operator (operator log entry #{await LastLogIndexAsync(server, "yan@localhost")};", removed.Text);
        await next.DisposeAsync();
    }

    [Fact]
    public async Task Purge_archive_beside_a_running_server_empties_the_archive_and_is_announced_to_the_account()
    {
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("una@localhost", "una-secret");
        await server.AddUserAsync("vic@localhost", "vic-secret");
        await using var una = await ConnectAsync(server, "una@localhost/desk", "una-secret");
        await using var vic = await ConnectAsync(server, "vic@localhost/desk", "vic-secret");
        var announced = new TaskCompletionSource<ChatMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = 0;
        una.EventReceived += e =>
        {
            if (e is not ChatMessage { Body: { } body } message) return;
            if (message.From is { Local: null } && body.Contains("operator deleted your message archive", StringComparison.Ordinal)) announced.TrySetResult(message);
            else if (body.StartsWith("kept ", StringComparison.Ordinal)) Interlocked.Increment(ref received);
        };
        foreach (var i in new[] { 1, 2, 3 }) await vic.SendMessageAsync(una.BoundJid!.Bare, $"kept {i}", requestReceipt: false);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref received) < 3 && waited.Elapsed < Timeout) await Task.Delay(20);
        var before = (await MetadataAsync(una)).Elements.ToList();
        Assert.Equal(["start", "end"], before.Select(e => e.Name));

        AssertOneLineError(await server.RunCliAsync("user", "purge-archive", "nobody@localhost"), 4, "no such user");
        var purge = await server.RunCliAsync("user", "purge-archive", "una@localhost");
        Assert.True(purge.Succeeded, purge.Describe());
        Assert.Contains("Deleted 3 archived messages of una@localhost", purge.Output);
        var purgeNotice = (await announced.Task.WaitAsync(Timeout)).Body!;
        Assert.Contains("Copies your clients keep are not affected", purgeNotice);
        Assert.Contains($"(operator log entry #{await LastLogIndexAsync(server, "una@localhost")};", purgeNotice);
        Assert.Empty((await MetadataAsync(una)).Elements);
        // The correspondent's own copies are not the operator's target.
        Assert.Equal(2, (await MetadataAsync(vic)).Elements.Count());
    }

    [Fact]
    public async Task An_export_by_the_operator_is_announced_to_the_account_citing_its_log_entry_online_or_at_the_next_login()
    {
        var dir = Directory.CreateTempSubdirectory("candor-export-notice-").FullName;
        try
        {
            await using var server = await CandorServer.StartAsync(output);
            await server.AddUserAsync("wes@localhost", "wes-secret");
            var online = await ConnectAsync(server, "wes@localhost/desk", "wes-secret");
            var announced = NoticeAsync(online, ExportNotice);
            var export = await server.RunCliAsync("user", "export", "wes@localhost", "--out", Path.Combine(dir, "1.xml"));
            Assert.True(export.Succeeded, export.Describe());
            Assert.Contains("announced to the account", (await server.RunCliAsync("user", "export", "--help")).Output);
            var notice = (await announced.WaitAsync(Timeout)).Body!;
            Assert.Contains($"(operator log entry #{await LastLogIndexAsync(server, "wes@localhost")};", notice);
            await online.DisposeAsync();

            // Made while no server runs: the next start queues the notice for the account's next login.
            await server.StopAsync();
            var offline = await server.RunCliAsync("user", "export", "wes@localhost", "--out", Path.Combine(dir, "2.xml"));
            Assert.True(offline.Succeeded, offline.Describe());
            var second = await LastLogIndexAsync(server, "wes@localhost");
            await server.StartAsync();
            await using var later = await ConnectAsync(server, "wes@localhost/phone", "wes-secret", notice: task => announced = task, noticeAbout: ExportNotice);
            Assert.Contains($"(operator log entry #{second};", (await announced.WaitAsync(Timeout)).Body);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private const string ExportNotice = "operator exported your account's data";

    private static async Task<Element> MetadataAsync(XmppClient client) =>
        (await client.IqAsync(new Element("iq", Ns.Client).SetAttribute("type", "get").Add(new Element("metadata", "urn:xmpp:mam:2"))))
        .GetChild("metadata", "urn:xmpp:mam:2")!;

    /// <summary>A connected, available client; <paramref name="notice"/> gets <see cref="NoticeAsync"/> (of <paramref name="noticeAbout"/>), watched from before the login.</summary>
    internal static async Task<XmppClient> ConnectAsync(CandorServer server, string jid, string password, Action<Task<ChatMessage>>? notice = null,
        string noticeAbout = PasswordNotice)
    {
        var client = new XmppClient(new XmppClientOptions
        {
            Jid = Jid.Parse(jid),
            Password = password,
            Host = CandorServer.Host,
            Port = server.C2sPort,
            CertificateFingerprint = server.CertificateFingerprint,
        });
        notice?.Invoke(NoticeAsync(client, noticeAbout));
        await client.ConnectAsync();
        await client.SendPresenceAsync();
        return client;
    }

    private const string PasswordNotice = "password of your account was changed";

    /// <summary>The first chat from the server's own JID about a password change (or what <paramref name="about"/> says).</summary>
    internal static Task<ChatMessage> NoticeAsync(XmppClient client, string about = PasswordNotice)
    {
        var first = new TaskCompletionSource<ChatMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.EventReceived += e =>
        {
            if (e is ChatMessage { From: { IsBare: true, Local: null }, Body: { } body } message && body.Contains(about, StringComparison.Ordinal))
                first.TrySetResult(message);
        };
        return first.Task;
    }

    [Fact]
    public async Task Configuration_comes_from_the_file_then_the_environment_then_the_flags()
    {
        var directory = Directory.CreateTempSubdirectory("candor-config-").FullName;
        try
        {
            var config = Path.Combine(directory, "candor.json");
            await File.WriteAllTextAsync(config, $$"""{ "Candor": { "Domain": "file.example", "DataDirectory": "{{Path.Combine(directory, "data").Replace("\\", "\\\\")}}" } }""");

            Assert.True((await Candor(["user", "add", "ann@file.example", "--password", "pw", "--config", config])).Succeeded);
            var fromFile = await Candor(["user", "list", "--config", config]);
            Assert.Contains("ann@file.example", fromFile.Output);

            var fromEnvironment = await Candor(["user", "list", "--config", config], new Dictionary<string, string?> { ["CANDOR__DOMAIN"] = "env.example" });
            Assert.Contains("ann@env.example", fromEnvironment.Output);

            var fromFlag = await Candor(["user", "list", "--config", config, "--domain", "flag.example"], new Dictionary<string, string?> { ["CANDOR__DOMAIN"] = "env.example" });
            Assert.Contains("ann@flag.example", fromFlag.Output);

            AssertOneLineError(await Candor(["user", "list", "--config", Path.Combine(directory, "missing.json")]), 2, "does not exist");
            await File.WriteAllTextAsync(config, """{ "Candor": { "C2sPort": "not a number" } }""");
            AssertOneLineError(await Candor(["serve", "--config", config]), 2, "configuration");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The index of the newest operator log entry about the account, as <c>candor audit show</c> prints it.</summary>
    internal static async Task<long> LastLogIndexAsync(CandorServer server, string account)
    {
        var show = await server.RunCliAsync("audit", "show", "--account", account);
        Assert.True(show.Succeeded, show.Describe());
        var line = show.Output.Split('\n').Last(l => l.Contains(account, StringComparison.Ordinal) && l.TrimStart() is [>= '0' and <= '9', ..]);
        return long.Parse(line.TrimStart().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

}
