namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// Drives one terminal program in a detached tmux session on a private socket (never the
/// user's own tmux server). The program runs under <c>sh -c</c> and the pane stays open after
/// it exits, with its exit status printed, so the last screen can always be captured.
/// </summary>
public sealed class Tmux : IAsyncDisposable
{
    private const string Session = "interop";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(15);

    private readonly string _tmux;
    private readonly string _socket;
    private readonly IReadOnlyDictionary<string, string?> _environment;

    private Tmux(string tmux, string socket, IReadOnlyDictionary<string, string?> environment)
    {
        _tmux = tmux;
        _socket = socket;
        _environment = environment;
    }

    /// <summary>
    /// Starts <paramref name="shellCommand"/> in a new 200x50 session. The environment is applied
    /// to the tmux server this starts, so the program inherits it.
    /// </summary>
    public static async Task<Tmux> StartAsync(string shellCommand, IReadOnlyDictionary<string, string?> environment,
        string socketDirectory, int width = 200, int height = 50)
    {
        var tmux = Tools.RequireCommand("tmux", "tmux");
        var env = new Dictionary<string, string?>(environment) { ["TMUX"] = null };
        env.TryAdd("TERM", "xterm-256color");
        env.TryAdd("LANG", "C.UTF-8");
        var session = new Tmux(tmux, Path.Combine(socketDirectory, "tmux.sock"), env);
        var wrapped = $"{shellCommand}; echo \"[program exited with status $?]\"; sleep 3600";
        await session.RunAsync("new-session", "-d", "-x", width.ToString(), "-y", height.ToString(),
            "-s", Session, wrapped);
        return session;
    }

    /// <summary>Types <paramref name="text"/> literally (no key-name lookup), without Enter.</summary>
    public Task TypeAsync(string text) => RunAsync("send-keys", "-t", Session, "-l", text);

    /// <summary>Sends named keys, e.g. "Enter", "C-c".</summary>
    public Task KeysAsync(params string[] keys) => RunAsync(["send-keys", "-t", Session, .. keys]);

    /// <summary>Types a line and presses Enter.</summary>
    public async Task SendLineAsync(string line)
    {
        await TypeAsync(line);
        await KeysAsync("Enter");
    }

    /// <summary>The screen plus up to <paramref name="history"/> lines of scrollback, wrapped lines joined.</summary>
    public async Task<string> CaptureAsync(int history = 2000)
    {
        var result = await ChildProcess.RunAsync(_tmux,
            ["-u", "-S", _socket, "capture-pane", "-p", "-J", "-S", $"-{history}", "-t", Session],
            CommandTimeout, _environment);
        return result.Succeeded ? result.Output : $"(capture-pane failed)\n{result.Describe()}";
    }

    /// <summary>
    /// Polls the screen until one of <paramref name="texts"/> appears; returns the first that
    /// did, or null on timeout.
    /// </summary>
    public async Task<string?> WaitForAnyAsync(TimeSpan timeout, params string[] texts)
    {
        var deadline = DateTime.UtcNow + timeout;
        do
        {
            var screen = await CaptureAsync();
            foreach (var text in texts)
            {
                if (screen.Contains(text, StringComparison.Ordinal))
                {
                    return text;
                }
            }
            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);
        return null;
    }

    private async Task RunAsync(params string[] arguments)
    {
        var result = await ChildProcess.RunAsync(_tmux, ["-u", "-S", _socket, .. arguments], CommandTimeout, _environment);
        Assert.True(result.Succeeded, $"tmux command failed\n{result.Describe()}");
    }

    public async ValueTask DisposeAsync()
    {
        await ChildProcess.RunAsync(_tmux, ["-S", _socket, "kill-server"], CommandTimeout, _environment);
    }
}
