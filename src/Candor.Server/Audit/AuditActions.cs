using System.Globalization;
using Candor.Server.Core;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Audit;

/// <summary>The actions the operator log records (docs/SECURITY.md lists them), and the server's own entries and heads.</summary>
public static class AuditActions
{
    public const string ServerStarted = "server.start";
    public const string ServerStopped = "server.stop";
    public const string ConfigurationChanged = "config.change";
    public const string PolicyReloaded = "policy.reload";
    public const string PolicyReloadFailed = "policy.reload-failed";
    public const string AccountCreated = "account.create";
    public const string AccountRemoved = "account.remove";
    public const string PasswordSet = "account.password";
    public const string ArchivePurged = "account.archive-purge";
    public const string SessionsRead = "account.sessions-read";
    public const string KeyRotated = "key.rotate";
    public const string DataExported = "account.export";
    public const string DataImported = "account.import";
    public const string BackupCreated = "backup.create";
    public const string BackupRestored = "backup.restore";
    public const string StorageMigrated = "storage.migrate";

    /// <summary>A tree head is signed at least this often while the log grows (and at every start and stop).</summary>
    public static readonly TimeSpan HeadInterval = TimeSpan.FromMinutes(1);

    /// <summary>What a start says about the treatment of users' data: version, published policy and privacy settings.</summary>
    public static Dictionary<string, string> StartDetails(XmppServer server)
    {
        var options = server.Options;
        return new()
        {
            ["version"] = server.Version,
            ["domain"] = options.Domain,
            ["policy_version"] = server.Policy.Current.Published.Version,
            ["policy_sha256"] = server.Policy.Current.Published.Digest,
            ["registration"] = options.AllowRegistration ? "open" : "closed",
            ["plaintext_allowed"] = options.AllowPlaintext ? "yes" : "no",
            ["archive_default"] = options.ArchiveDefault,
            ["archive_retention_days"] = options.ArchiveRetentionDays.ToString(CultureInfo.InvariantCulture),
            ["max_offline_messages"] = options.MaxOfflineMessages.ToString(CultureInfo.InvariantCulture),
            ["master_key"] = options.MasterKey is null ? "file" : "setting",
        };
    }

    /// <summary>
    /// The start details that differ from the previous start's, each as "old -> new" ("(none)" for a detail one side
    /// lacks); empty when nothing changed or there was no previous start.
    /// </summary>
    public static Dictionary<string, string> ChangesSince(AuditEntry? previousStart, IReadOnlyDictionary<string, string> now)
    {
        var changes = new Dictionary<string, string>();
        if (previousStart is null) return changes;
        foreach (var name in previousStart.Details.Keys.Union(now.Keys).Order(StringComparer.Ordinal))
        {
            var before = previousStart.Details.GetValueOrDefault(name);
            var after = now.GetValueOrDefault(name);
            if (before != after) changes[name] = $"{before ?? "(none)"} -> {after ?? "(none)"}";
        }
        return changes;
    }

    /// <summary>Signs a head every <see cref="HeadInterval"/> when entries (the server's or the commands') were added.</summary>
    public static async Task SignHeadsAsync(AuditLog log, ILogger logger, CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(HeadInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    log.SignHeadIfGrown();
                }
                catch (Exception e)
                {
                    logger.LogError(e, "signing an audit log tree head failed");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
