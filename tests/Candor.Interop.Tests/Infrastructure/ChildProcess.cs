using System.Diagnostics;
using System.Text;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>The outcome of a finished (or timed-out) child process.</summary>
public sealed record ProcessResult(string Command, int ExitCode, bool TimedOut, string Output)
{
    public bool Succeeded => !TimedOut && ExitCode == 0;

    public string Describe() =>
        $"$ {Command}\n" + (TimedOut ? "(timed out, killed)\n" : $"(exit code {ExitCode})\n") + Output;
}

/// <summary>
/// A child process whose stdout and stderr are collected line by line into one transcript
/// (stderr lines prefixed), readable at any time. Stdin is closed at once, so nothing can block on it.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly object _lock = new();

    public string Command { get; }

    private ChildProcess(Process process, string command)
    {
        _process = process;
        Command = command;
    }

    public static ChildProcess Start(string fileName, IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }
        // Python and the .NET console both print UTF-8 regardless of the test host's locale.
        psi.Environment["PYTHONIOENCODING"] = "utf-8";
        psi.Environment["PYTHONUNBUFFERED"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                if (value is null)
                {
                    psi.Environment.Remove(key);
                }
                else
                {
                    psi.Environment[key] = value;
                }
            }
        }

        var command = fileName + " " + string.Join(' ', psi.ArgumentList.Select(Quote));
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var child = new ChildProcess(process, command);
        process.OutputDataReceived += (_, e) => child.Append(e.Data, "");
        process.ErrorDataReceived += (_, e) => child.Append(e.Data, "[stderr] ");
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {command}");
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Runs a command to completion (or until the timeout, then kills it).</summary>
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        await using var child = Start(fileName, arguments, environment);
        var exited = await child.WaitForExitAsync(timeout);
        if (!exited)
        {
            child.Kill();
            await child.WaitForExitAsync(TimeSpan.FromSeconds(5));
        }
        return new ProcessResult(child.Command, exited ? child.ExitCode : -1, !exited, child.Output);
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get { lock (_lock) { return _output.ToString(); } }
    }

    private void Append(string? line, string prefix)
    {
        if (line is null)
        {
            return;
        }
        lock (_lock)
        {
            _output.Append(prefix).Append(line).Append('\n');
        }
    }

    /// <summary>Waits for exit; true if the process exited within the timeout (output fully read).</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            // Also waits for the redirected streams to reach end of file.
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Polls the transcript until it contains <paramref name="text"/>; false on timeout or exit.</summary>
    public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Output.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }
            if (_process.HasExited)
            {
                // give the asynchronous readers a moment to deliver the last lines
                await WaitForExitAsync(TimeSpan.FromSeconds(2));
                return Output.Contains(text, StringComparison.Ordinal);
            }
            await Task.Delay(100);
        }
        return false;
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Kill();
            await WaitForExitAsync(TimeSpan.FromSeconds(5));
        }
        _process.Dispose();
    }

    private static string Quote(string argument) =>
        argument.Length > 0 && argument.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:@=+,".Contains(c))
            ? argument
            : "'" + argument.Replace("'", "'\\''") + "'";
}
