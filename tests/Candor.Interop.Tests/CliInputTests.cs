using System.Net;
using System.Net.Sockets;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// Odd input at the command line — a missing argument, a directory where a file belongs, a file where a
/// directory belongs, a port or a data directory already in use — answered with one line and a non-zero exit
/// code, never a help screen or a stack trace.
/// </summary>
public sealed class CliInputTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static Task<ProcessResult> Candor(params string[] arguments) =>
        ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost, [CandorServer.Launcher.CandorDll, .. arguments], Timeout);

    private static void AssertOneLineError(ProcessResult result, int exitCode, string startsWith, string contains)
    {
        Assert.True(result.ExitCode == exitCode, result.Describe());
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line\n{result.Describe()}");
        Assert.Contains(startsWith, lines[0]);
        Assert.Contains(contains, lines[0]);
        Assert.DoesNotContain("   at ", result.Output);
    }

    [Fact]
    public async Task A_missing_argument_is_a_usage_error_with_exit_code_2_not_a_verdict()
    {
        // Exit 1 from 'policy check' means "rejected"; a forgotten TEXT must not read as a verdict.
        AssertOneLineError(await Candor("policy", "check"), 2, "candor policy check: ", "TEXT");
        AssertOneLineError(await Candor("user", "add"), 2, "candor user add: ", "JID");
        AssertOneLineError(await Candor("send", "--jid", "alice@localhost"), 2, "candor send: ", "TO");
        AssertOneLineError(await Candor("serve", "--c2s-port", "abc"), 2, "candor serve: ", "abc");
    }

    [Fact]
    public async Task A_policy_file_that_is_missing_or_a_directory_is_named_as_such()
    {
        var missing = Path.Combine(_directory, "missing.json");
        AssertOneLineError(await Candor("policy", "check", "hello", "--policy", missing), 2, $"policy file {missing}: ", "no such file");
        AssertOneLineError(await Candor("policy", "check", "hello", "--policy", _directory), 2, $"policy file {_directory}: ", "is a directory");
        Assert.DoesNotContain("line 0", (await Candor("policy", "show", "--policy", missing)).Output);
    }

    [Fact]
    public async Task A_data_directory_that_is_a_file_is_refused()
    {
        var file = Path.Combine(_directory, "not-a-directory");
        await File.WriteAllTextAsync(file, "x");
        AssertOneLineError(await Candor("user", "list", "--data", file), 2, "candor", "is a file, not a directory");
    }

    [Fact]
    public async Task A_mistyped_data_directory_is_refused_not_created()
    {
        var missing = Path.Combine(_directory, "typo-data");
        AssertOneLineError(await Candor("user", "list", "--data", missing), 2, "candor", "no Candor data in");
        AssertOneLineError(await Candor("user", "remove", "ann@localhost", "--data", missing), 2, "candor", "no Candor data in");
        AssertOneLineError(await Candor("user", "sessions", "ann@localhost", "--data", missing), 2, "candor", "no Candor data in");
        Assert.False(Directory.Exists(missing), "a mistyped --data must not be created");

        Assert.True((await Candor("user", "add", "ann@localhost", "--password", "pw", "--data", missing)).ExitCode == 0);
        Assert.Contains("ann@localhost", (await Candor("user", "list", "--data", missing)).Output);
    }

    [Fact]
    public async Task A_bad_bind_address_is_a_usage_error_found_before_anything_is_written()
    {
        var data = Path.Combine(_directory, "data");
        AssertOneLineError(await Candor("serve", "--data", data, "--bind", "999.1.1.1"), 2, "candor serve: ", "'999.1.1.1' is not an IP address");
        Assert.False(Directory.Exists(data), "no data directory (nor certificate) for a server that cannot start");
    }

    [Fact]
    public async Task A_port_in_use_is_one_line_without_a_stack_trace()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var ports = FreePorts.Take(3);
        var result = await Candor("serve", "--data", Path.Combine(_directory, "data"), "--bind", CandorServer.Host,
            "--c2s-port", port.ToString(), "--tls-port", ports[0].ToString(), "--http-port", ports[1].ToString(), "--https-port", ports[2].ToString(), "--s2s-port", "-1");
        Assert.True(result.ExitCode == 1, result.Describe());
        Assert.Contains("candor serve: cannot listen", result.Output);
        Assert.Contains("address already in use", result.Output);
        Assert.DoesNotContain("   at ", result.Output);
        Assert.DoesNotContain("Exception", result.Output);
    }

    [Fact]
    public async Task A_second_server_on_the_same_data_directory_is_refused_and_the_first_keeps_its_pid_file()
    {
        await using var server = await CandorServer.StartAsync(output);
        var ports = FreePorts.Take(4);
        var second = await Candor("serve", "--data", server.DataDirectory, "--bind", CandorServer.Host,
            "--c2s-port", ports[0].ToString(), "--tls-port", ports[1].ToString(), "--http-port", ports[2].ToString(), "--https-port", ports[3].ToString(), "--s2s-port", "-1");
        AssertOneLineError(second, 1, "candor serve: ", "another candor serve is running");

        // The first server is still found by the commands that talk to it.
        var reload = await server.RunCliAsync("policy", "reload");
        Assert.True(reload.Succeeded, reload.Describe() + "\n" + server.Transcript);
    }
}
