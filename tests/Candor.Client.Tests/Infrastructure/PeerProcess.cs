using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>
/// Running a peer server's programs (Prosody, ejabberd): as the package's own system user through setpriv when the
/// tests run as root, as the current user otherwise; and free loopback ports for them.
/// </summary>
public static class PeerProcess
{
    public static bool IsRoot => Environment.UserName == "root";

    /// <param name="user">The system user to run as (when root); null runs as the current user.</param>
    /// <param name="home">HOME for the program (Erlang writes its cookie there); null leaves it as it is.</param>
    public static Process Start(string file, IEnumerable<string> arguments, string? user, string? home = null)
    {
        var asUser = IsRoot && user is not null;
        var psi = new ProcessStartInfo(asUser ? "/usr/bin/setpriv" : file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (home is not null) psi.WorkingDirectory = home;
        if (asUser)
        {
            foreach (var a in new[] { $"--reuid={user}", $"--regid={user}", "--init-groups" }) psi.ArgumentList.Add(a);
            if (home is not null)
            {
                psi.ArgumentList.Add("env");
                psi.ArgumentList.Add($"HOME={home}");
            }
            psi.ArgumentList.Add(file);
        }
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Runs a program to its end (killed after 60 s): its exit code and output.</summary>
    public static async Task<(int, string)> RunAsync(string file, IEnumerable<string> arguments, string? user = null, string? home = null)
    {
        using var process = Start(file, arguments, user, home);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, "timed out");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
