using System.Text.Json;
using Candor.Client.Omemo;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// The OMEMO state of `candor send`/`listen` sealed with a key from the OS keyring: Debian's gnome-keyring, headless on
/// a private session bus (<see cref="SecretServiceBus"/>), checked from outside with libsecret's secret-tool.
/// </summary>
[Trait("Category", "Interop")]
public sealed class OmemoKeyringTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);
    private const string Alice = "alice@localhost";
    private const string Bob = "bob@localhost";

    /// <summary>
    /// alice (keyring) sends bob (no bus: a key file, as before) two messages from two runs: her state says
    /// "secret-service", the key is an item secret-tool finds and is nowhere in her configuration directory, and the
    /// second run is the same OMEMO device (bob learns of one device and decrypts both).
    /// </summary>
    [Fact]
    public async Task The_state_is_sealed_with_a_keyring_key_and_a_second_run_reads_it_back()
    {
        await using var server = await Started();
        await using var keyring = await SecretServiceBus.StartAsync();
        var aliceConfig = Path.Combine(keyring.Home, "alice-config");
        var bobConfig = Path.Combine(server.DataDirectory, "bob-config");

        await using var listen = ChildProcess.Start(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, "listen", "--jid", Bob, "--count", "2", "--json", .. Connect(server)],
            new Dictionary<string, string?> { ["CANDOR_PASSWORD"] = "bob-secret", ["XDG_CONFIG_HOME"] = bobConfig, ["DBUS_SESSION_BUS_ADDRESS"] = null });
        Assert.True(await listen.WaitForOutputAsync("listening as", StepTimeout), $"listen did not start\n{listen.Output}");
        // No session bus: bob's state is sealed with a key file beside it, as before the keyring.
        Assert.Equal("keyfile", Sealing(bobConfig, Bob));
        Assert.True(File.Exists(Path.Combine(bobConfig, "candor", "omemo", "bob%40localhost.key")));

        var first = await SendAsync(server, keyring.Environment, aliceConfig, "first from the keyring");
        Assert.True(first.Succeeded && first.Output.Contains("sent encrypted (OMEMO)"), first.Describe());
        var state = StatePath(aliceConfig, Alice);
        Assert.Equal("secret-service", Sealing(aliceConfig, Alice));
        Assert.Equal([state], Directory.GetFiles(Path.GetDirectoryName(state)!));

        var search = await keyring.SecretToolAsync("search", "--all", "application", "candor", "account", Alice);
        Assert.True(search.Succeeded, search.Describe());
        Assert.Contains($"label = Candor OMEMO key for {Alice}", search.Output);
        Assert.Contains("attribute.purpose = omemo-state", search.Output);
        Assert.Contains($"attribute.file = {state}", search.Output);
        var key = await new OmemoKeyring(Alice, keyring.Address).ReadKeyAsync(state);
        Assert.Equal(32, key.Length);
        foreach (var file in Directory.GetFiles(aliceConfig, "*", SearchOption.AllDirectories))
            Assert.True(File.ReadAllBytes(file).AsSpan().IndexOf(key) < 0, $"the keyring's key is in {file}");

        var second = await SendAsync(server, keyring.Environment, aliceConfig, "second from the keyring");
        Assert.True(second.Succeeded && second.Output.Contains("sent encrypted (OMEMO)"), second.Describe());
        Assert.True(await listen.WaitForExitAsync(StepTimeout), $"listen did not exit after two messages\n{listen.Output}");
        var messages = listen.Output.Split('\n').Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["first from the keyring", "second from the keyring"], messages.Select(m => m.GetProperty("body").GetString()));
        Assert.All(messages, m => Assert.True(m.GetProperty("encrypted").GetBoolean()));
        Assert.Equal(messages[0].GetProperty("device").GetUInt32(), messages[1].GetProperty("device").GetUInt32());
        Assert.Single(listen.Output.Split('\n'), l => l.Contains($"new OMEMO device of {Alice}"));
        output.WriteLine(search.Output);
    }

    /// <summary>
    /// A keyring-sealed state whose key cannot be had: the item deleted (secret-tool clear), no session bus, the
    /// collection locked with no display to prompt on. Each is one line naming the cause and a non-zero exit, and the
    /// state is left as it was: never a new identity, never a key file.
    /// </summary>
    [Fact]
    public async Task A_state_whose_keyring_key_cannot_be_had_fails_in_one_line_and_stays_as_it_was()
    {
        await using var server = await Started();
        await using var keyring = await SecretServiceBus.StartAsync();
        var aliceConfig = "";
        var state = "";
        byte[] sealedBytes = [];
        async Task Create(string name)
        {
            aliceConfig = Path.Combine(keyring.Home, name);
            var created = await SendAsync(server, keyring.Environment, aliceConfig, "to create the state");
            Assert.True(created.Succeeded, created.Describe());
            state = StatePath(aliceConfig, Alice);
            Assert.Equal("secret-service", Sealing(aliceConfig, Alice));
            sealedBytes = File.ReadAllBytes(state);
        }
        async Task Refused(Dictionary<string, string?> environment, params string[] expected)
        {
            var run = await SendAsync(server, environment, aliceConfig, "must not be sent");
            Assert.False(run.Succeeded, run.Describe());
            var errors = run.Output.Split('\n').Where(l => l.StartsWith("[stderr] ", StringComparison.Ordinal)).ToList();
            Assert.True(errors.Count == 1, run.Describe());
            Assert.Contains($"{state} is sealed with a key in the OS keyring", errors[0]);
            foreach (var text in expected) Assert.Contains(text, errors[0]);
            Assert.Equal(sealedBytes, File.ReadAllBytes(state));
            Assert.Equal([state], Directory.GetFiles(Path.GetDirectoryName(state)!));
            output.WriteLine(errors[0]);
        }

        await Create("first");
        await Refused(new Dictionary<string, string?>(keyring.Environment) { ["DBUS_SESSION_BUS_ADDRESS"] = null }, "no D-Bus session bus");
        var clear = await keyring.SecretToolAsync("clear", "application", "candor", "account", Alice);
        Assert.True(clear.Succeeded, clear.Describe());
        await Refused(keyring.Environment, "holds no item", "deleted");

        await Create("second");
        var locked = await keyring.LockAsync();
        Assert.True(locked.Succeeded, locked.Describe());
        await Refused(keyring.Environment, "locked", "headless");
    }

    /// <summary>CANDOR_OMEMO_KEY=keyring without a keyring is refused in one line; =file uses a key file even with a
    /// keyring on the bus.</summary>
    [Fact]
    public async Task CANDOR_OMEMO_KEY_chooses_how_a_new_state_is_sealed()
    {
        await using var server = await Started();
        await using var keyring = await SecretServiceBus.StartAsync();
        var noKeyring = await SendAsync(server, new Dictionary<string, string?> { ["CANDOR_OMEMO_KEY"] = "keyring", ["DBUS_SESSION_BUS_ADDRESS"] = null },
            Path.Combine(keyring.Home, "without"), "must not be sent");
        Assert.False(noKeyring.Succeeded, noKeyring.Describe());
        Assert.Single(noKeyring.Output.Split('\n'), l => l.StartsWith("[stderr] ", StringComparison.Ordinal)
            && l.Contains("the OS keyring is unreachable: no D-Bus session bus"));
        Assert.False(File.Exists(StatePath(Path.Combine(keyring.Home, "without"), Alice)));

        var fileConfig = Path.Combine(keyring.Home, "file");
        var file = await SendAsync(server, new Dictionary<string, string?>(keyring.Environment) { ["CANDOR_OMEMO_KEY"] = "file" }, fileConfig, "sealed with a key file");
        Assert.True(file.Succeeded, file.Describe());
        Assert.Equal("keyfile", Sealing(fileConfig, Alice));
        var search = await keyring.SecretToolAsync("search", "--all", "application", "candor");
        Assert.DoesNotContain("Candor OMEMO key", search.Output);
    }

    private async Task<CandorServer> Started()
    {
        var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync(Alice, "alice-secret");
        await server.AddUserAsync(Bob, "bob-secret");
        return server;
    }

    private static string[] Connect(CandorServer server) =>
        ["--server", $"{CandorServer.Host}:{server.C2sPort}", "--fingerprint", server.CertificateFingerprint];

    private static Task<ProcessResult> SendAsync(CandorServer server, Dictionary<string, string?> environment, string config, string text) =>
        ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, "send", "--jid", Alice, Bob, text, .. Connect(server)], StepTimeout,
            new Dictionary<string, string?>(environment)
            {
                ["CANDOR_PASSWORD"] = "alice-secret",
                ["XDG_CONFIG_HOME"] = config,
                ["CANDOR_OMEMO_PASSPHRASE"] = null,
                ["CANDOR_OMEMO_KEY"] = environment.GetValueOrDefault("CANDOR_OMEMO_KEY"),
            });

    private static string StatePath(string config, string account) =>
        Path.Combine(config, "candor", "omemo", Uri.EscapeDataString(account) + ".state");

    /// <summary>What the state file says sealed it.</summary>
    private static string? Sealing(string config, string account)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(StatePath(config, account)));
        return json.RootElement.GetProperty("Kdf").GetString();
    }
}
