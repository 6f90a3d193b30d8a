using System.Globalization;
using System.Text.Json;
using Candor.Server.Hosting;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Policy;

/// <summary>One loaded policy version: what the file says, compiled for matching, and as published.</summary>
public sealed record PolicySnapshot(PolicyMatcher Matcher, PublishedPolicy Published)
{
    public static PolicySnapshot Create(PolicyDefinition definition, ServerOptions options, string file = "(policy)") =>
        new(new PolicyMatcher(definition, file), PublishedPolicy.Create(definition, options));
}

/// <summary>The outcome of a reload, as reported to the log and to <c>candor policy reload</c>.</summary>
public sealed record PolicyReloadResult(bool Ok, bool Changed, string Version, string Digest, string? Error);

/// <summary>
/// The policy in force, and loading it: at start (a bad file stops the server from starting) and on reload
/// (SIGHUP, <c>candor policy reload</c>), where a bad file leaves the previous version in force. The
/// snapshot is replaced with one reference write, so a message is matched against exactly one version.
/// </summary>
public sealed partial class PolicyService
{
    /// <summary>Written to the data directory after every load, for <c>candor policy reload</c> to report.</summary>
    public const string StatusFileName = "policy-status.json";

    private readonly ServerOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _reloadLock = new();
    private PolicySnapshot _current;

    public PolicyService(ServerOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        File = options.PolicyFile is { } path ? Path.GetFullPath(path) : null;
        try
        {
            _current = Load();
        }
        catch (PolicyException e)
        {
            WriteStatus(new PolicyReloadResult(false, false, "", "", e.Message));
            throw;
        }
        var published = _current.Published;
        if (File is null) Log.NoPolicyFile(_logger, published.Version, published.Digest);
        else Log.Loaded(_logger, published.Version, File, _current.Matcher.Rules.Count, published.Digest);
        WriteStatus(new PolicyReloadResult(true, true, published.Version, published.Digest, null));
    }

    /// <summary>The full path of the policy file, or null when the server runs without one (no content rules).</summary>
    public string? File { get; }

    public PolicySnapshot Current => Volatile.Read(ref _current);

    /// <summary>Where the JSON document is served (set by the HTTP host once it listens); null without HTTP.</summary>
    public Func<string?>? UrlResolver { get; set; }

    public string? Url => UrlResolver is { } resolve ? resolve() : _options.PolicyUrl;

    /// <summary>Re-reads the file. On any error the version in force stays, and the error is logged and returned.</summary>
    /// <summary>
    /// The rule that refuses this message's body or subject, or null to deliver it. Every place that delivers
    /// content asks this (one-to-one delivery, chat rooms); end-to-end encrypted messages are never inspected.
    /// </summary>
    public ValueTask<PolicyRule?> RefusingRuleAsync<TState>(Xml.Element message, Func<TState, ValueTask<bool>> senderIsStranger, TState state)
    {
        var matcher = Current.Matcher;
        if (matcher.IsEmpty || PolicyModule.IsEndToEndEncrypted(message)) return ValueTask.FromResult<PolicyRule?>(null);
        PolicyMatches? matches = null;
        foreach (var child in message.Elements)
        {
            if (child.Namespace != Xmpp.Ns.Client) continue;
            var field = child.Name switch
            {
                "body" => PolicyFields.Body,
                "subject" => PolicyFields.Subject,
                _ => PolicyFields.None,
            };
            if (field != PolicyFields.None) matcher.Match(child.Text, field, ref matches);
        }
        if (matches is null) return ValueTask.FromResult<PolicyRule?>(null);
        foreach (var rule in matches.TimedOut) Log.RegexTimedOut(_logger, rule);
        return matcher.DecideAsync(matches, senderIsStranger, state);
    }

    public PolicyReloadResult Reload()
    {
        lock (_reloadLock)
        {
            var old = Current.Published;
            PolicyReloadResult result;
            try
            {
                var next = Load();
                var changed = next.Published.Digest != old.Digest;
                Volatile.Write(ref _current, next);
                result = new PolicyReloadResult(true, changed, next.Published.Version, next.Published.Digest, null);
                if (changed) Log.Changed(_logger, old.Version, old.Digest, next.Published.Version, next.Published.Digest, next.Matcher.Rules.Count);
                else Log.Unchanged(_logger, old.Version, old.Digest);
            }
            catch (PolicyException e)
            {
                result = new PolicyReloadResult(false, false, old.Version, old.Digest, e.Message);
                Log.ReloadFailed(_logger, e.Message, old.Version, old.Digest);
            }
            WriteStatus(result);
            return result;
        }
    }

    private PolicySnapshot Load() =>
        File is null
            ? PolicySnapshot.Create(PolicyDefinition.Empty, _options)
            : PolicySnapshot.Create(PolicyLoader.LoadFile(File), _options, File);

    private void WriteStatus(PolicyReloadResult result)
    {
        try
        {
            Directory.CreateDirectory(_options.DataDirectory);
            var path = Path.Combine(_options.DataDirectory, StatusFileName);
            var status = new PolicyStatus(DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture), result.Ok,
                result.Changed, result.Version, result.Digest, result.Error);
            var temp = path + ".tmp";
            System.IO.File.WriteAllText(temp, JsonSerializer.Serialize(status, PolicyStatusJson.Default.PolicyStatus));
            System.IO.File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.StatusNotWritten(_logger, e.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "Policy rule {Rule}: regex timed out; the message was not held for it")]
        public static partial void RegexTimedOut(ILogger logger, string rule);

        [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Version} loaded from {File}: rules {Rules}, SHA-256 {Digest}")]
        public static partial void Loaded(ILogger logger, string version, string file, int rules, string digest);

        [LoggerMessage(Level = LogLevel.Information, Message = "No policy file: no content rules; published policy {Version}, SHA-256 {Digest}")]
        public static partial void NoPolicyFile(ILogger logger, string version, string digest);

        [LoggerMessage(Level = LogLevel.Information, Message = "Policy changed from {OldVersion} (SHA-256 {OldDigest}) to {Version} (SHA-256 {Digest}), rules {Rules}")]
        public static partial void Changed(ILogger logger, string oldVersion, string oldDigest, string version, string digest, int rules);

        [LoggerMessage(Level = LogLevel.Information, Message = "Policy reloaded, unchanged: {Version}, SHA-256 {Digest}")]
        public static partial void Unchanged(ILogger logger, string version, string digest);

        [LoggerMessage(Level = LogLevel.Error, Message = "Policy reload failed, {Version} (SHA-256 {Digest}) stays in force: {Error}")]
        public static partial void ReloadFailed(ILogger logger, string error, string version, string digest);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write the policy status file: {Reason}")]
        public static partial void StatusNotWritten(ILogger logger, string reason);
    }
}

/// <summary>The status file's content: the last load attempt.</summary>
public sealed record PolicyStatus(string Time, bool Ok, bool Changed, string Version, string Digest, string? Error);

[System.Text.Json.Serialization.JsonSerializable(typeof(PolicyStatus))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
public sealed partial class PolicyStatusJson : System.Text.Json.Serialization.JsonSerializerContext;
