using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Candor.Server.Hosting;
using Candor.Server.Modules.Policy;

namespace Candor.Cli;

/// <summary>
/// <c>candor policy show|check|reload</c>: read the content policy as the server publishes it, try a text
/// against it, and make the running server reload its file.
/// </summary>
internal static class PolicyCommand
{
    /// <summary>Written by <c>candor serve</c> in the data directory; <c>candor policy reload</c> signals that process.</summary>
    public const string PidFileName = "candor.pid";

    /// <summary><c>check</c>: the text would be delivered.</summary>
    public const int Delivered = 0;
    /// <summary><c>check</c>: the text would be refused.</summary>
    public const int Rejected = 1;

    public static Command Create()
    {
        var command = new Command("policy", "The published content policy: show it, check a text against it, reload it in the running server");
        command.Add(Show());
        command.Add(Check());
        command.Add(Reload());
        return command;
    }

    private static Option<string?> PolicyOption() =>
        new("--policy") { Description = "Policy file (default: the configuration's PolicyFile; none means no rules)" };

    private static Command Show()
    {
        var common = new CommonOptions();
        var policy = PolicyOption();
        var json = new Option<bool>("--json") { Description = "Print the exact JSON document the server serves (its SHA-256 is the announced digest)" };
        var command = new Command("show", "Show the policy as the server would publish it");
        command.Add(policy);
        command.Add(json);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, policy, (options, snapshot) =>
        {
            var published = snapshot.Published;
            if (parse.GetValue(json))
            {
                using var stdout = Console.OpenStandardOutput();
                stdout.Write(published.Json);
                return ExitCodes.Ok;
            }
            Console.WriteLine($"Policy of {options.Domain}, version {published.Version}");
            Console.WriteLine($"SHA-256 {published.Digest}");
            Console.WriteLine(options.PolicyFile is null ? "No policy file: no content rules." : $"From {Path.GetFullPath(options.PolicyFile)}");
            foreach (var rule in snapshot.Matcher.Rules)
            {
                Console.WriteLine();
                Console.WriteLine($"{rule.Id} ({PolicyRule.Name(rule.Action)}): {rule.Description}");
                Console.WriteLine($"  applies to {(rule.Whose == PolicyWhose.Strangers ? "senders not in the recipient's roster" : "everyone")}, "
                    + $"in {string.Join(" and ", PolicyRule.Names(rule.Where))}");
                if (rule.Phrases.Count > 0)
                    Console.WriteLine($"  phrases ({(rule.Match == PhraseMatch.Word ? "whole words" : "anywhere")}"
                        + $"{(rule.IgnoreSeparators ? ", ignoring separators" : "")}): {string.Join(", ", rule.Phrases.Select(p => $"\"{p}\""))}");
                if (rule.Regex.Count > 0) Console.WriteLine($"  regex: {string.Join(", ", rule.Regex.Select(p => $"/{p}/"))}");
            }
            Console.WriteLine();
            Console.WriteLine(PublishedPolicy.Statements.Encrypted);
            Console.WriteLine("The full document, with retention and logging: candor policy show --json");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Check()
    {
        var common = new CommonOptions();
        var policy = PolicyOption();
        var text = new Argument<string>("TEXT") { Description = "The message text to check" };
        var subject = new Option<bool>("--subject") { Description = "Check TEXT as a message subject instead of a body" };
        var contact = new Option<bool>("--contact") { Description = "The sender is in the recipient's roster (default: a stranger, so every rule applies)" };
        var command = new Command("check", "Which rule would match TEXT, and why. Exit status 0: delivered; 1: rejected; 2: bad policy file or usage");
        command.Add(text);
        command.Add(policy);
        command.Add(subject);
        command.Add(contact);
        common.AddTo(command);
        command.SetAction(parse => Run(parse, common, policy, (_, snapshot) =>
        {
            var input = parse.GetValue(text)!;
            var field = parse.GetValue(subject) ? PolicyFields.Subject : PolicyFields.Body;
            var stranger = !parse.GetValue(contact);
            var matcher = snapshot.Matcher;
            PolicyMatches? matches = null;
            matcher.Match(input, field, ref matches, explain: true);
            Console.WriteLine($"Normalized {(field == PolicyFields.Body ? "body" : "subject")}: \"{TextNormalizer.Normalize(input)}\"");
            if (matcher.Rules.Any(r => r.IgnoreSeparators))
                Console.WriteLine($"Without separators: \"{TextNormalizer.Compact(TextNormalizer.Normalize(input))}\"");
            foreach (var hit in matches?.Hits ?? [])
            {
                var rule = hit.Rule;
                var applies = rule.Whose == PolicyWhose.Everyone || stranger ? "" : " — does not apply: the sender is a contact";
                Console.WriteLine($"  {rule.Id} ({PolicyRule.Name(rule.Action)}, {PolicyRule.Name(rule.Whose)}): {hit.Matched} matched \"{hit.Text}\"{applies}");
            }
            foreach (var id in matches?.TimedOut ?? []) Console.WriteLine($"  {id}: regex timed out (the server would deliver)");
            var refusing = matcher.Decide(matches, stranger);
            if (refusing is null)
            {
                Console.WriteLine(matches is null || matches.Rules.Count == 0
                    ? "Delivered: no rule matches."
                    : "Delivered: an allow rule matches, or the matching rules do not apply.");
                return Delivered;
            }
            Console.WriteLine($"Rejected by {refusing.Id}. The sender would receive policy-violation: \"{refusing.RejectionText}\"");
            return Rejected;
        }));
        return command;
    }

    private static Command Reload()
    {
        var common = new CommonOptions();
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the server's answer", DefaultValueFactory = _ => 10 };
        var command = new Command("reload", "Make the server running on --data re-read its policy file (SIGHUP); a bad file leaves the old policy in force");
        command.Add(timeout);
        common.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            ServerOptions options;
            try
            {
                options = common.Load(parse);
            }
            catch (OptionsException e)
            {
                return Fail(ExitCodes.Usage, e.Message);
            }
            var pidFile = Path.Combine(options.DataDirectory, PidFileName);
            if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
                return Fail(ExitCodes.NotFound, $"no running server found for {Path.GetFullPath(options.DataDirectory)} (no {PidFileName})");
            var statusFile = Path.Combine(options.DataDirectory, PolicyService.StatusFileName);
            var before = File.Exists(statusFile) ? File.ReadAllText(statusFile) : null;
            if (!Signals.Hangup(pid))
                return Fail(ExitCodes.NotFound, $"cannot signal the server (pid {pid} from {pidFile}): {Marshal.GetLastPInvokeErrorMessage()}");

            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(parse.GetValue(timeout)))
            {
                await Task.Delay(100, cancellation);
                var now = File.Exists(statusFile) ? ReadShared(statusFile) : null;
                if (now is null || now == before) continue;
                var status = JsonSerializer.Deserialize(now, PolicyStatusJson.Default.PolicyStatus)!;
                if (!status.Ok)
                    return Fail(ExitCodes.Failure, $"reload failed, version {status.Version} stays in force: {status.Error}");
                Console.WriteLine(status.Changed
                    ? $"Policy reloaded: version {status.Version}, SHA-256 {status.Digest}"
                    : $"Policy reloaded, unchanged: version {status.Version}, SHA-256 {status.Digest}");
                return ExitCodes.Ok;
            }
            return Fail(ExitCodes.Failure, $"sent SIGHUP to pid {pid}, but the server did not report a reload within {parse.GetValue(timeout)} s");
        });
        return command;
    }

    private static string? ReadShared(string path)
    {
        try
        {
            return File.ReadAllText(path, Encoding.UTF8);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static int Run(ParseResult parse, CommonOptions common, Option<string?> policyOption, Func<ServerOptions, PolicySnapshot, int> action)
    {
        ServerOptions options;
        try
        {
            options = common.Load(parse, o =>
            {
                if (parse.GetValue(policyOption) is { } file) o.PolicyFile = file;
            });
        }
        catch (OptionsException e)
        {
            return Fail(ExitCodes.Usage, e.Message);
        }
        PolicySnapshot snapshot;
        try
        {
            snapshot = options.PolicyFile is null
                ? PolicySnapshot.Create(PolicyDefinition.Empty, options)
                : PolicySnapshot.Create(PolicyLoader.LoadFile(options.PolicyFile), options, options.PolicyFile);
        }
        catch (PolicyException e)
        {
            return Fail(ExitCodes.Usage, e.Message);
        }
        return action(options, snapshot);
    }

    internal static int Fail(int code, string message)
    {
        Console.Error.WriteLine($"candor: {message}");
        return code;
    }

    internal static class Signals
    {
        private const int SIGHUP = 1;

        [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static extern int Kill(int pid, int signal);

        [DllImport("libc", EntryPoint = "signal")]
        private static extern nint SetHandler(int signal, nint handler);

        public static bool Hangup(int pid)
        {
            if (OperatingSystem.IsWindows()) return false;
            return Kill(pid, SIGHUP) == 0;
        }

        /// <summary>
        /// A server started under nohup inherits SIGHUP ignored, and .NET then never delivers it to a registration:
        /// 'candor policy reload' would find the server deaf. SIGHUP goes back to its default disposition before the
        /// server registers for it; the registration then handles it (a reload), so a hangup still stops nothing.
        /// </summary>
        public static void UnignoreHangup()
        {
            if (!OperatingSystem.IsWindows()) SetHandler(SIGHUP, 0);
        }
    }
}
