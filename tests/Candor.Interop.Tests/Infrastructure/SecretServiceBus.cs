using System.Diagnostics;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// A private D-Bus session bus with Debian's gnome-keyring serving the freedesktop Secret Service on it, headless:
/// <c>dbus-daemon --session --fork</c>, then <c>gnome-keyring-daemon --unlock --components=secrets</c> fed a password
/// on stdin, which creates and unlocks a "login" keyring (the default collection) in this bus's own home directory.
/// Stopping the bus stops the keyring daemon with it.
/// </summary>
public sealed class SecretServiceBus : IAsyncDisposable
{
    private readonly int _busPid;

    private SecretServiceBus(string home, string address, int busPid)
    {
        Home = home;
        Address = address;
        _busPid = busPid;
    }

    public string Home { get; }

    public string Address { get; }

    /// <summary>What a client of this keyring needs: the bus, and no display (so no unlock prompt can be shown).</summary>
    public Dictionary<string, string?> Environment => new()
    {
        ["DBUS_SESSION_BUS_ADDRESS"] = Address,
        ["HOME"] = Home,
        ["XDG_DATA_HOME"] = Path.Combine(Home, "data"),
        ["XDG_RUNTIME_DIR"] = Path.Combine(Home, "run"),
        ["DISPLAY"] = null,
        ["WAYLAND_DISPLAY"] = null,
    };

    public static async Task<SecretServiceBus> StartAsync()
    {
        var dbus = Tools.RequireCommand("dbus-daemon", "dbus");
        Tools.RequireCommand("gnome-keyring-daemon", "gnome-keyring");
        Tools.RequireCommand("secret-tool", "libsecret-tools");
        var home = Directory.CreateTempSubdirectory("candor-keyring-").FullName;
        if (!OperatingSystem.IsWindows()) Directory.CreateDirectory(Path.Combine(home, "run"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var started = await ChildProcess.RunAsync(dbus, ["--session", "--fork", "--nopidfile", "--print-address=1", "--print-pid=1"],
            TimeSpan.FromSeconds(30), new Dictionary<string, string?> { ["HOME"] = home });
        var lines = started.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(started.Succeeded && lines.Length >= 2 && int.TryParse(lines[1], out _), $"dbus-daemon did not start\n{started.Describe()}");
        var bus = new SecretServiceBus(home, lines[0], int.Parse(lines[1]));
        var unlock = await ChildProcess.RunAsync("/bin/sh",
            ["-c", "printf %s keyring-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1"],
            TimeSpan.FromSeconds(30), bus.Environment);
        Assert.True(unlock.Succeeded, $"gnome-keyring-daemon --unlock failed\n{unlock.Describe()}");
        return bus;
    }

    /// <summary>Runs secret-tool (libsecret, another Secret Service client than Candor's) against this keyring.</summary>
    public Task<ProcessResult> SecretToolAsync(params string[] arguments) =>
        ChildProcess.RunAsync(Tools.RequireCommand("secret-tool", "libsecret-tools"), arguments, TimeSpan.FromSeconds(30), Environment);

    /// <summary>Locks the login collection, as a screen lock or a timeout would.</summary>
    public Task<ProcessResult> LockAsync() =>
        ChildProcess.RunAsync(Tools.RequireCommand("dbus-send", "dbus"),
            ["--session", "--print-reply", "--dest=org.freedesktop.secrets", "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock",
             "array:objpath:/org/freedesktop/secrets/collection/login"], TimeSpan.FromSeconds(30), Environment);

    public ValueTask DisposeAsync()
    {
        try
        {
            using var process = Process.GetProcessById(_busPid);
            process.Kill();
        }
        catch (ArgumentException)
        {
        }
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
        return ValueTask.CompletedTask;
    }
}
