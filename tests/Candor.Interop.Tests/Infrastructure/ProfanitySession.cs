namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// profanity (Debian package, libstrophe) in tmux with a fresh HOME (no configuration, accounts, trusted
/// certificates or logs from before), logged in over STARTTLS to a candor server.
/// </summary>
public sealed class ProfanitySession : IAsyncDisposable
{
    public static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);
    private readonly string _home;
    private readonly CandorServer _server;

    private ProfanitySession(string home, Tmux tmux, CandorServer server)
    {
        _home = home;
        Tmux = tmux;
        _server = server;
    }

    public Tmux Tmux { get; }

    public static async Task<ProfanitySession> LoginAsync(CandorServer server, string jid, string password)
    {
        var profanity = Tools.RequireCommand("profanity", "profanity");
        Tools.RequireCommand("tmux", "tmux");
        var home = Directory.CreateTempSubdirectory("candor-profanity-").FullName;
        var environment = new Dictionary<string, string?>
        {
            ["HOME"] = home,
            ["XDG_CONFIG_HOME"] = Path.Combine(home, ".config"),
            ["XDG_DATA_HOME"] = Path.Combine(home, ".local", "share"),
            ["XDG_RUNTIME_DIR"] = null,
        };
        var session = new ProfanitySession(home, await Tmux.StartAsync(profanity, environment, home), server);
        var tmux = session.Tmux;
        Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "Type '/help'", "/help for help") is not null,
            await session.ContextAsync("profanity did not start"));

        await tmux.SendLineAsync($"/connect {jid} server {CandorServer.Host} port {server.C2sPort}");
        Assert.True(await tmux.WaitForAnyAsync(StepTimeout, "Enter password:") is not null,
            await session.ContextAsync("profanity did not ask for the password"));
        await tmux.SendLineAsync(password);

        // Default 'tls force': STARTTLS is required; the self-signed certificate is accepted
        // at profanity's prompt with /tls allow (once, not stored).
        const string LoggedIn = "logged in successfully";
        const string CertificatePrompt = "Use '/tls allow' to accept this certificate";
        string[] failures = ["Login failed", "Connection failed", "Disconnected", "lost connection", "[program exited"];
        var seen = await tmux.WaitForAnyAsync(StepTimeout, [LoggedIn, CertificatePrompt, .. failures]);
        if (seen == CertificatePrompt)
        {
            await tmux.SendLineAsync("/tls allow");
            seen = await tmux.WaitForAnyAsync(StepTimeout, [LoggedIn, .. failures]);
        }
        Assert.True(seen == LoggedIn, await session.ContextAsync($"profanity did not log in (saw: {seen ?? "nothing"})"));
        var screen = await tmux.CaptureAsync();
        Assert.True(screen.Contains("[TLS]", StringComparison.Ordinal), await session.ContextAsync("profanity's status bar does not show [TLS]"));
        return session;
    }

    /// <summary>A failure message with the screen, profanity's log and the server's transcript.</summary>
    public async Task<string> ContextAsync(string what, string? extra = null) =>
        $"{what}\n--- profanity screen ---\n{await Tmux.CaptureAsync()}\n--- profanity log ---\n{Log()}" +
        (extra is null ? "" : $"\n{extra}") + $"\n{_server.Transcript}";

    private string Log()
    {
        var path = Path.Combine(_home, ".local", "share", "profanity", "logs", "profanity.log");
        return File.Exists(path) ? File.ReadAllText(path) : $"(no {path})";
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Tmux.SendLineAsync("/quit");
        }
        finally
        {
            await Tmux.DisposeAsync();
            try
            {
                Directory.Delete(_home, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
