namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// External programs the interop tests drive. A missing one is a test failure that says what to
/// install (./test.sh installs them on Debian), never a skip: a skipped interop test hides a gap.
/// </summary>
public static class Tools
{
    /// <summary>The Debian interpreter that has python3-slixmpp, not whatever python3 is first on PATH.</summary>
    public const string Python = "/usr/bin/python3";

    public static string ScriptsDirectory => Path.Combine(AppContext.BaseDirectory, "scripts");

    public static string Script(string name)
    {
        var path = Path.Combine(ScriptsDirectory, name);
        Assert.True(File.Exists(path), $"interop script {path} is missing from the test output (scripts/** is copied by the csproj)");
        return path;
    }

    /// <summary>Fails unless /usr/bin/python3 can import slixmpp.</summary>
    public static async Task RequireSlixmppAsync()
    {
        Assert.True(File.Exists(Python),
            $"{Python} not found: install the Debian packages python3 and python3-slixmpp (./test.sh does this)");
        var result = await ChildProcess.RunAsync(Python, ["-c", "import slixmpp; print(slixmpp.__version__)"],
            TimeSpan.FromSeconds(30));
        Assert.True(result.Succeeded,
            $"{Python} cannot import slixmpp: install the Debian package python3-slixmpp (./test.sh does this)\n{result.Describe()}");
    }

    /// <summary>Fails unless <paramref name="command"/> is on PATH; returns its full path.</summary>
    public static string RequireCommand(string command, string debianPackage)
    {
        var path = FindOnPath(command);
        Assert.True(path is not null,
            $"'{command}' not found on PATH: install the Debian package {debianPackage} (./test.sh does this)");
        return path!;
    }

    public static string? FindOnPath(string command)
    {
        var directories = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/bin", "/usr/bin", "/bin"]);
        foreach (var directory in directories)
        {
            var candidate = Path.Combine(directory, command);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}
