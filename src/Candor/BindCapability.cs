using System.Runtime.InteropServices;
using System.Text;
using Candor.Server.Hosting;

namespace Candor.Cli;

/// <summary>
/// The packaged systemd unit grants CAP_NET_BIND_SERVICE as an ambient capability, because a unit cannot tell whether
/// /etc/candor/candor.json names a port below 1024. The server keeps it only when it does: otherwise it clears its
/// ambient set and executes itself again, which leaves the new process with no capability at all (Linux computes
/// the permitted set of a program without file capabilities from the ambient set alone). Capabilities belong to
/// threads, so clearing them in a running .NET process would miss its other threads; the new image has only one.
/// </summary>
internal static class BindCapability
{
    private const int NetBindService = 10;
    private const int PrCapAmbient = 47;
    private const int PrCapAmbientClearAll = 4;

    /// <summary>Returns only when the capability is kept (or was never there); otherwise the process is replaced.</summary>
    public static void DropUnlessNeeded(ServerOptions options)
    {
        if (!OperatingSystem.IsLinux() || !HeldAsAmbient() || NeedsPrivilegedPort(options)) return;
        var arguments = ReadNulSeparated("/proc/self/cmdline");
        var environment = ReadNulSeparated("/proc/self/environ");
        if (arguments.Length == 0 || prctl(PrCapAmbient, PrCapAmbientClearAll, 0, 0, 0) != 0) return;
        execve("/proc/self/exe", [.. arguments, null], [.. environment, null]);
        // Still here: the exec failed. The ambient set is empty now, but this process keeps its permitted set.
        Console.Error.WriteLine($"candor serve: could not re-execute without CAP_NET_BIND_SERVICE (errno {Marshal.GetLastPInvokeError()}); running with it");
    }

    private static bool NeedsPrivilegedPort(ServerOptions o) =>
        new[] { o.C2sPort, o.TlsPort, o.S2sPort, o.S2sTlsPort, o.HttpPort, o.HttpsPort, o.ClusterPort }.Any(port => port is > 0 and < 1024);

    private static bool HeldAsAmbient()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapAmb:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["CapAmb:".Length..].Trim(), 16) & (1UL << NetBindService)) != 0;
    }

    /// <summary>The strings of a /proc file that ends each with a NUL (an empty argument stays one).</summary>
    private static string[] ReadNulSeparated(string path)
    {
        var text = Encoding.UTF8.GetString(File.ReadAllBytes(path));
        return text.Length == 0 ? [] : text[..^1].Split('\0');
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [DllImport("libc", SetLastError = true)]
    private static extern int execve(string path, string?[] argv, string?[] envp);
}
