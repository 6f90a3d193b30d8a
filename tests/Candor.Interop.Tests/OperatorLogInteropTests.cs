using System.Runtime.Versioning;
using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// Issue 18 beyond the operator's commands: the user's side through slixmpp's ad-hoc plugin (the account's log entries
/// with proofs, "Export my data") and its XEP-0077 plugin (removal confirmed with the password), XEP-0227 import of files
/// Prosody 0.12 and ejabberd 23.01 wrote and an export → import round trip, and
/// backup/restore in the log: a restore either continues the newer log from its export or shows monitors the rollback.
/// </summary>
[Trait("Category", "Interop")]
[SupportedOSPlatform("linux")]
public sealed class OperatorLogInteropTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private readonly List<string> _directories = [];

    private string TempDirectory(string prefix)
    {
        var path = Directory.CreateTempSubdirectory(prefix).FullName;
        _directories.Add(path);
        return path;
    }

    public void Dispose()
    {
        foreach (var path in _directories) Directory.Delete(path, recursive: true);
    }

    private static Task<ProcessResult> Candor(params string[] arguments) =>
        ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost, [CandorServer.Launcher.CandorDll, .. arguments], Timeout);

    private async Task<ProcessResult> Succeeds(Task<ProcessResult> run)
    {
        var result = await run;
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, result.Describe());
        return result;
    }

    [Fact]
    public async Task Slixmpp_reads_its_accounts_log_entries_with_proofs_and_exports_its_data_through_ad_hoc_commands()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("ann@localhost", "ann-secret");
        var created = await UserCommandTests.LastLogIndexAsync(server, "ann@localhost");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("operator_log.py"), CandorServer.Host, server.C2sPort.ToString(), "ann@localhost/slixmpp", "ann-secret", "--created-entry", created.ToString()],
            Timeout);
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"operator_log.py failed\n{result.Describe()}\n{server.Transcript}");
        var cited = long.Parse(result.Output.Split('\n').Single(l => l.StartsWith("EXPORT ENTRY ", StringComparison.Ordinal))[13..].Trim());
        // The export the account made is in the log, by the account, at the index the command's note cited.
        var show = await Succeeds(server.RunCliAsync("audit", "show", "--account", "ann@localhost"));
        var line = show.Output.Split('\n').Single(l => l.TrimStart().StartsWith($"{cited} ", StringComparison.Ordinal));
        Assert.Contains("account  account.export", line);
        Assert.Equal(cited, await UserCommandTests.LastLogIndexAsync(server, "ann@localhost"));
    }

    [Fact]
    public async Task A_Prosody_export_imports_and_the_user_logs_in_with_the_same_password_and_roster()
    {
        await Tools.RequireSlixmppAsync();
        var file = await ProsodyExportAsync("alice", "old-pass");
        var text = await File.ReadAllTextAsync(file);
        output.WriteLine(text);
        Assert.Contains("mechanism='SCRAM-SHA-1'", text);

        await using var server = await CandorServer.StartAsync(output);
        var import = await Succeeds(server.RunCliAsync("user", "import", file));
        Assert.Contains("Imported alice@localhost.", import.Output);
        UserCommandTests.AssertOneLineError(await server.RunCliAsync("user", "import", file), 3, "alice@localhost exists already");
        var show = await Succeeds(server.RunCliAsync("audit", "show", "--account", "alice@localhost"));
        Assert.Single(show.Output.Split('\n'), l => l.Contains("account.import", StringComparison.Ordinal));

        // Prosody keeps SCRAM-SHA-1 only: that works at once; PLAIN (over TLS) proves the password and adds SCRAM-SHA-256.
        foreach (var mechanism in new[] { "SCRAM-SHA-1", "PLAIN", "SCRAM-SHA-256" })
        {
            var login = await ChildProcess.RunAsync(Tools.Python,
                [Tools.Script("imported_account.py"), CandorServer.Host, server.C2sPort.ToString(), $"alice@localhost/{mechanism}", "old-pass",
                 "--mechanism", mechanism, "--contact", "friend@localhost", "--name", "Friend", "--group", "Pals"], Timeout);
            output.WriteLine(login.Describe());
            Assert.True(login.Succeeded, $"{mechanism}: imported_account.py failed\n{login.Describe()}\n{server.Transcript}");
        }
        await using var alice = await SealedStorageInteropTests.ConnectAsync(server, "alice@localhost/check", "old-pass", presence: false);
        var vcard = await alice.IqAsync(Stanza.CreateIq("get", "v1", null, Jid.Parse("alice@localhost")).Add(new Candor.Xml.Element("vCard", Ns.VCard)));
        Assert.Equal("Alice from Prosody", vcard.GetChild("vCard", Ns.VCard)?.GetChildText("FN", Ns.VCard));
        // Carol's pending subscription request came along, and goes out again in Candor's own export.
        var again = Path.Combine(Path.GetDirectoryName(file)!, "alice-from-candor.xml");
        await Succeeds(server.RunCliAsync("user", "export", "alice@localhost", "--out", again));
        Assert.Matches("<presence [^>]*from='carol@localhost' type='subscribe'/>", await File.ReadAllTextAsync(again));
        var wrong = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("login_once.py"), CandorServer.Host, server.C2sPort.ToString(), "alice@localhost/wrong", "not-the-password"], Timeout);
        Assert.False(wrong.Succeeded, wrong.Describe());
    }

    /// <summary>
    /// Prosody 0.12's own XEP-0227 export: an account registered with prosodyctl (its SCRAM-SHA-1 credentials), a roster
    /// and vCard in its internal store format, then prosody-migrator from "internal" to "xep0227". All under a temporary
    /// directory: the migrator's copy is pointed there instead of /var/lib/prosody and runs as the caller.
    /// </summary>
    private async Task<string> ProsodyExportAsync(string user, string password)
    {
        Tools.RequireCommand("prosodyctl", "prosody");
        var lua = Tools.RequireCommand("lua5.4", "lua5.4");
        var migrator = Tools.RequireCommand("prosody-migrator", "prosody");
        var dir = TempDirectory("candor-prosody-");
        var data = Path.Combine(dir, "data");
        var exported = Path.Combine(dir, "export");
        Directory.CreateDirectory(exported);
        var config = Path.Combine(dir, "prosody.cfg.lua");
        await File.WriteAllTextAsync(config, $"""
            pidfile = "{dir}/prosody.pid"
            data_path = "{data}"
            run_as_root = true
            log = {"{"} info = "{dir}/prosody.log" {"}"}
            authentication = "internal_hashed"
            storage = "internal"
            VirtualHost "localhost"
            """);
        await Succeeds(ChildProcess.RunAsync("prosodyctl", ["--config", config, "register", user, "localhost", password], Timeout));
        Directory.CreateDirectory(Path.Combine(data, "localhost", "roster"));
        Directory.CreateDirectory(Path.Combine(data, "localhost", "vcard"));
        await File.WriteAllTextAsync(Path.Combine(data, "localhost", "roster", user + ".dat"), """
            return {
            	[false] = { ["version"] = 3; ["pending"] = { ["carol@localhost"] = true; }; };
            	["friend@localhost"] = { ["subscription"] = "both"; ["groups"] = { ["Pals"] = true; }; ["name"] = "Friend"; };
            };
            """);
        await File.WriteAllTextAsync(Path.Combine(data, "localhost", "vcard", user + ".dat"), """
            return {
            	["name"] = "vCard"; ["attr"] = { ["xmlns"] = "vcard-temp"; };
            	[1] = { ["name"] = "FN"; ["attr"] = { ["xmlns"] = "vcard-temp"; }; [1] = "Alice from Prosody"; };
            };
            """);
        var script = (await File.ReadAllTextAsync(migrator))
            .Replace("CFG_DATADIR='/var/lib/prosody';", $"CFG_DATADIR='{exported}';", StringComparison.Ordinal)
            .Replace("\tstartup.switch_user();", "", StringComparison.Ordinal);
        Assert.Contains($"CFG_DATADIR='{exported}';", script);
        var copy = Path.Combine(dir, "migrator.lua");
        await File.WriteAllTextAsync(copy, script);
        var stores = "{ \"accounts\", \"roster\", \"vcard\", \"private\" }";
        var migration = Path.Combine(dir, "migrator.cfg.lua");
        await File.WriteAllTextAsync(migration, $$"""
            input { hosts = { ["localhost"] = {{stores}} }; type = "internal"; path = "{{data}}"; }
            output { hosts = { ["localhost"] = {{stores}} }; type = "xep0227"; }
            """);
        await Succeeds(ChildProcess.RunAsync(lua, [copy, "--config", migration, "input", "output"], Timeout));
        var file = Path.Combine(exported, $"{user}@localhost.xml");
        Assert.True(File.Exists(file), $"prosody-migrator wrote no {file}");
        return file;
    }

    [Fact]
    public async Task Slixmpp_removes_its_account_only_with_its_password_and_the_removal_is_one_log_entry_the_stream_end_cites()
    {
        await Tools.RequireSlixmppAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("lea@localhost", "lea-secret");
        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("account_removal.py"), CandorServer.Host, server.C2sPort.ToString(), "lea@localhost/slixmpp", "lea-secret"], Timeout);
        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded, $"account_removal.py failed\n{result.Describe()}\n{server.Transcript}");

        var show = (await Succeeds(server.RunCliAsync("audit", "show", "--account", "lea@localhost"))).Output;
        var removal = Assert.Single(show.Split('\n'), l => l.Contains("account.remove", StringComparison.Ordinal));
        Assert.Contains("account  account.remove", removal);
        var index = await UserCommandTests.LastLogIndexAsync(server, "lea@localhost");
        Assert.Contains($"STREAM ERROR not-authorized: the account was removed by its owner (operator log entry #{index})", result.Output);
        Assert.DoesNotContain("lea@localhost", (await Succeeds(server.RunCliAsync("user", "list"))).Output);
        var login = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("login_once.py"), CandorServer.Host, server.C2sPort.ToString(), "lea@localhost/again", "lea-secret"], Timeout);
        Assert.False(login.Succeeded, login.Describe());
    }

    [Fact]
    public async Task An_ejabberd_export_imports_and_the_user_logs_in_with_the_same_password_roster_offline_message_and_bookmarks()
    {
        await Tools.RequireSlixmppAsync();
        var file = await EjabberdExportAsync("alice", "old-pass");
        foreach (var part in Directory.EnumerateFiles(Path.GetDirectoryName(file)!)) output.WriteLine($"{part}:\n{await File.ReadAllTextAsync(part)}");
        Assert.Contains("<xi:include", await File.ReadAllTextAsync(file));

        await using var server = await CandorServer.StartAsync(output);
        var import = await Succeeds(server.RunCliAsync("user", "import", file));
        Assert.Contains("Imported alice@localhost.", import.Output);
        Assert.Single((await Succeeds(server.RunCliAsync("audit", "show", "--account", "alice@localhost"))).Output.Split('\n'),
            l => l.Contains("account.import", StringComparison.Ordinal));
        // First, without presence: the slixmpp logins below send presence, which would take the offline message.
        // ejabberd keeps SCRAM-SHA-1 only (its values base64-encoded twice in the file).
        await using (var alice = await SealedStorageInteropTests.ConnectAsync(server, "alice@localhost/check", "old-pass", presence: false, mechanisms: ["SCRAM-SHA-1"]))
        {
            var vcard = await alice.IqAsync(Stanza.CreateIq("get", "v1", null, Jid.Parse("alice@localhost")).Add(new Candor.Xml.Element("vCard", Ns.VCard)));
            Assert.Equal("Alice from ejabberd", vcard.GetChild("vCard", Ns.VCard)?.GetChildText("FN", Ns.VCard));
            var bookmarks = await alice.IqAsync(Stanza.CreateIq("get", "p1", null, null)
                .Add(new Candor.Xml.Element("query", Ns.Private).Add(new Candor.Xml.Element("storage", "storage:bookmarks"))));
            Assert.Equal("room@muc.localhost", bookmarks.GetChild("query", Ns.Private)?.GetChild("storage", "storage:bookmarks")?.FirstElement?.GetAttribute("jid"));
            var waiting = new TaskCompletionSource<ChatMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
            alice.EventReceived += e =>
            {
                if (e is ChatMessage { Body: "while you were away" } message) waiting.TrySetResult(message);
            };
            await alice.SendPresenceAsync();
            Assert.Equal("carol@localhost", (await waiting.Task.WaitAsync(Timeout)).From?.Bare.ToString());
        }
        // slixmpp logs in with SCRAM-SHA-1, and with PLAIN over TLS.
        foreach (var mechanism in new[] { "SCRAM-SHA-1", "PLAIN" })
        {
            var login = await ChildProcess.RunAsync(Tools.Python,
                [Tools.Script("imported_account.py"), CandorServer.Host, server.C2sPort.ToString(), $"alice@localhost/{mechanism}", "old-pass",
                 "--mechanism", mechanism, "--contact", "friend@localhost", "--name", "Friend", "--group", "Pals"], Timeout);
            output.WriteLine(login.Describe());
            Assert.True(login.Succeeded, $"{mechanism}: imported_account.py failed\n{login.Describe()}\n{server.Transcript}");
        }
    }

    /// <summary>
    /// ejabberd 23.01's own XEP-0227 export (<c>ejabberdctl export_piefxis DIR</c>): a private node on loopback with no
    /// listener, an account with SCRAM credentials, a roster item, vCard, an offline message and private XML made with
    /// mod_admin_extra's commands. ejabberdctl runs as root or as the ejabberd user only; as root it runs as ejabberd.
    /// Returns the main file, which XIncludes the host's file beside it.
    /// </summary>
    private async Task<string> EjabberdExportAsync(string user, string password)
    {
        var ejabberdctl = Tools.RequireCommand("ejabberdctl", "ejabberd");
        Assert.True(Environment.UserName is "root" or "ejabberd", "ejabberdctl runs only as root or as the ejabberd user");
        var dir = TempDirectory("candor-ejabberd-");
        var exported = Path.Combine(dir, "export");
        foreach (var sub in new[] { "conf", "spool", "logs", "export" }) Directory.CreateDirectory(Path.Combine(dir, sub));
        var port = FreePorts.Take(1)[0];
        await File.WriteAllTextAsync(Path.Combine(dir, "conf", "ejabberd.yml"), """
            hosts:
              - "localhost"
            loglevel: info
            listen: []
            auth_method: internal
            auth_password_format: scram
            acme:
              auto: false
            modules:
              mod_roster: {}
              mod_vcard: {}
              mod_private: {}
              mod_offline: {}
              mod_admin_extra: {}
            """);
        await File.WriteAllTextAsync(Path.Combine(dir, "conf", "ejabberdctl.cfg"), $"""
            ERLANG_NODE=candortest{port}@localhost
            ERL_DIST_PORT={port}
            INET_DIST_INTERFACE=127.0.0.1
            ERL_OPTIONS="-setcookie candor_test_{port}"
            EJABBERD_PID_PATH={dir}/ejabberd.pid
            EJABBERD_BYPASS_WARNINGS=true
            """);
        await File.WriteAllTextAsync(Path.Combine(dir, "conf", "inetrc"), "{lookup,[\"file\",\"native\"]}.\n");
        var asRoot = Environment.UserName == "root";
        if (asRoot) await Succeeds(ChildProcess.RunAsync("chown", ["-R", "ejabberd:ejabberd", dir], Timeout));
        Task<ProcessResult> Ctl(params string[] arguments)
        {
            string[] command = [ejabberdctl, "--config-dir", $"{dir}/conf", "--config", $"{dir}/conf/ejabberd.yml", "--ctl-config", $"{dir}/conf/ejabberdctl.cfg",
                "--logs", $"{dir}/logs", "--spool", $"{dir}/spool", .. arguments];
            return asRoot
                ? ChildProcess.RunAsync("setpriv", ["--reuid=ejabberd", "--regid=ejabberd", "--init-groups", "env", $"HOME={dir}", .. command], Timeout)
                : ChildProcess.RunAsync(command[0], command[1..], Timeout, new Dictionary<string, string?> { ["HOME"] = dir });
        }
        await Succeeds(Ctl("start"));
        try
        {
            await Succeeds(Ctl("started"));
            await Succeeds(Ctl("register", user, "localhost", password));
            await Succeeds(Ctl("add_rosteritem", user, "localhost", "friend", "localhost", "Friend", "Pals", "both"));
            await Succeeds(Ctl("set_vcard", user, "localhost", "FN", "Alice from ejabberd"));
            await Succeeds(Ctl("send_message", "chat", "carol@localhost", $"{user}@localhost", "", "while you were away"));
            await Succeeds(Ctl("private_set", user, "localhost", "<storage xmlns='storage:bookmarks'><conference jid='room@muc.localhost' name='Room'/></storage>"));
            await Succeeds(Ctl("export_piefxis", exported));
        }
        finally
        {
            output.WriteLine((await Ctl("stop")).Describe());
            await Ctl("stopped");
        }
        var main = Directory.EnumerateFiles(exported, "*.xml").Where(f => !Path.GetFileName(f).Contains('_', StringComparison.Ordinal)).ToList();
        Assert.True(main.Count == 1, $"ejabberd wrote {string.Join(", ", Directory.EnumerateFiles(exported))}");
        return main[0];
    }

    [Fact]
    public async Task Export_then_import_into_another_server_round_trips_credentials_roster_offline_messages_and_archive()
    {
        var dir = TempDirectory("candor-xep0227-");
        string[] users = ["rita", "sam"];
        var first = new Dictionary<string, string>();
        await using (var server = await CandorServer.StartAsync(output))
        {
            foreach (var user in users) await server.AddUserAsync($"{user}@localhost", $"{user}-secret");
            await using (var rita = await SealedStorageInteropTests.ConnectAsync(server, "rita@localhost/desk", "rita-secret"))
            {
                await rita.SetRosterItemAsync(Jid.Parse("sam@localhost"), "Sam", ["Team"]);
                for (var i = 0; i < 3; i++) await rita.SendMessageAsync(Jid.Parse("sam@localhost"), $"while you were away {i}", requestReceipt: false);
                await rita.PingAsync();
            }
            // The archive writer batches: give it a moment, then export.
            await Task.Delay(1500);
            foreach (var user in users)
            {
                var path = Path.Combine(dir, $"{user}-1.xml");
                await Succeeds(server.RunCliAsync("user", "export", $"{user}@localhost", "--out", path));
                first[user] = await File.ReadAllTextAsync(path);
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            }
            UserCommandTests.AssertOneLineError(await server.RunCliAsync("user", "export", "rita@localhost", "--out", Path.Combine(dir, "rita-1.xml")), 3, "exists already");
            Assert.Equal(3, first["rita"].Split("while you were away").Length - 1);
            Assert.Equal(6, first["sam"].Split("while you were away").Length - 1);
            Assert.Contains("mechanism='SCRAM-SHA-256'", first["sam"]);
            Assert.Contains("account.export", (await server.RunCliAsync("audit", "show", "--account", "sam@localhost")).Output);
        }

        await using var other = new CandorServer();
        foreach (var user in users) await Succeeds(other.RunCliAsync("user", "import", Path.Combine(dir, $"{user}-1.xml")));
        await other.StartAsync();
        foreach (var user in users)
        {
            var path = Path.Combine(dir, $"{user}-2.xml");
            await Succeeds(other.RunCliAsync("user", "export", $"{user}@localhost", "--out", path));
            Assert.Equal(first[user], await File.ReadAllTextAsync(path));
        }
        await using (var rita = await SealedStorageInteropTests.ConnectAsync(other, "rita@localhost/again", "rita-secret", presence: false))
        {
            var item = Assert.Single(await rita.GetRosterAsync());
            Assert.Equal(("sam@localhost", "Sam", "Team"), (item.Jid.ToString(), item.Name, Assert.Single(item.Groups)));
        }
        await using var sam = await SealedStorageInteropTests.ConnectAsync(other, "sam@localhost/again", "sam-secret", presence: false);
        var bodies = new List<string>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sam.EventReceived += e =>
        {
            // The operator's exports above are announced to the accounts too: only the messages count here.
            if (e is not ChatMessage { Body: { } body } || !body.StartsWith("while you were away", StringComparison.Ordinal)) return;
            lock (bodies)
            {
                bodies.Add(body);
                if (bodies.Count == 3) all.TrySetResult();
            }
        };
        await sam.SendPresenceAsync();
        await all.Task.WaitAsync(Timeout);
        Assert.Equal(["while you were away 0", "while you were away 1", "while you were away 2"], bodies);
    }

    [Fact]
    public async Task Backup_and_restore_are_in_the_log_and_a_restore_either_continues_the_newer_log_or_shows_monitors_the_rollback()
    {
        var dir = TempDirectory("candor-restore-");
        var backup = Path.Combine(dir, "candor.backup");
        var export = Path.Combine(dir, "audit.jsonl");
        var state = Path.Combine(dir, "monitor.json");
        string keys;
        await using (var server = await CandorServer.StartAsync(output))
        {
            await server.AddUserAsync("ada@localhost", "ada-secret");
            await Succeeds(server.RunCliAsync("backup", "--out", backup));
            var entries = (await Succeeds(server.RunCliAsync("audit", "show"))).Output;
            Assert.Contains("backup.create", entries);
            Assert.Contains("file=candor.backup", entries);
            // After the backup: more operator actions, seen by a monitor.
            await server.AddUserAsync("bea@localhost", "bea-secret");
            await Succeeds(Candor("audit", "monitor", $"http://{CandorServer.Host}:{server.HttpPort}", "--state", state));
            await Succeeds(server.RunCliAsync("audit", "export", "--out", export));
            // The keys live beside the data, which goes with the server: keep a copy, as an operator keeps them apart.
            keys = Directory.CreateDirectory(Path.Combine(dir, "keys")).FullName;
            foreach (var key in new[] { "master.key", "audit.key" }) File.Copy(Path.Combine(server.DataDirectory, "keys", key), Path.Combine(keys, key));
        }
        var seen = await File.ReadAllTextAsync(state);

        async Task<CandorServer> RestoreAsync(params string[] extra)
        {
            var restored = new CandorServer();
            var target = Directory.CreateDirectory(Path.Combine(restored.DataDirectory, "keys")).FullName;
            foreach (var key in new[] { "master.key", "audit.key" }) File.Copy(Path.Combine(keys, key), Path.Combine(target, key));
            var result = await Succeeds(restored.RunCliAsync(["restore", backup, .. extra]));
            Assert.Contains(extra.Length == 0 ? "a monitor that saw a later head will report a rollback" : "The operator log continues", result.Output);
            await restored.StartAsync();
            return restored;
        }

        // With the export of the newer log: the log grows on, bea's creation included, and the monitor agrees.
        await using (var continued = await RestoreAsync("--log", export))
        {
            var entries = (await Succeeds(continued.RunCliAsync("audit", "show"))).Output;
            Assert.Contains("bea@localhost", entries);
            Assert.Contains("backup.restore", entries);
            Assert.Contains("entries_lost=none", entries);
            await Succeeds(continued.RunCliAsync("audit", "verify"));
            await Succeeds(Candor("audit", "monitor", $"http://{CandorServer.Host}:{continued.HttpPort}", "--state", state));
        }

        // Without it: the restored log lacks what the monitor saw, and the monitor says so.
        await File.WriteAllTextAsync(state, seen);
        await using (var rolledBack = await RestoreAsync())
        {
            var entries = (await Succeeds(rolledBack.RunCliAsync("audit", "show"))).Output;
            Assert.DoesNotContain("bea@localhost", entries);
            Assert.Contains("entries_lost=unknown", entries);
            await Succeeds(rolledBack.RunCliAsync("audit", "verify"));
            var monitor = await Candor("audit", "monitor", $"http://{CandorServer.Host}:{rolledBack.HttpPort}", "--state", state);
            output.WriteLine(monitor.Describe());
            Assert.Equal(1, monitor.ExitCode);
            Assert.Matches("ROLLBACK|FORK", monitor.Output);
        }

        // An export that is not this log's continuation is refused, and nothing is restored.
        var unrelated = new CandorServer();
        await using (unrelated)
        {
            await unrelated.AddUserAsync("zed@localhost", "zed-secret");
            var foreign = Path.Combine(dir, "foreign.jsonl");
            await Succeeds(unrelated.RunCliAsync("audit", "export", "--out", foreign));
            var refused = new CandorServer();
            await using (refused)
            {
                var result = await refused.RunCliAsync("restore", backup, "--log", foreign);
                Assert.Equal(1, result.ExitCode);
                Assert.Contains("nothing was restored", result.Output);
                Assert.False(File.Exists(Path.Combine(refused.DataDirectory, "candor.db")), "a refused restore left a database");
            }
        }
    }
}
