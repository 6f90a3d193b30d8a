using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Accounts;

public enum OperatorChange
{
    PasswordChanged,
    Removed,
    ArchivePurged,
    DataExported,
}

/// <summary>
/// Account changes the operator makes beside a running server: <c>candor user passwd|remove</c> write the
/// database directly and queue the change here; the server polls the queue and does what the change means for
/// live sessions, as it does for the same change made in band (the password change is announced and ends the
/// sessions, a removed account's sessions end, a purged message archive and an export of the account's data are announced).
/// </summary>
public sealed class OperatorChanges(IStorage storage)
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    // The queue belongs to no account: the empty string is never a valid localpart.
    private const string Queue = "";
    private readonly IArchiveStore _queue = storage.OpenArchive("operator-changes");

    /// <summary>Queues the change with the index of the operator log entry that records it, which the notices cite.</summary>
    public Task RecordAsync(string user, OperatorChange change, long logIndex) =>
        _queue.AppendAsync(Queue, DateTimeOffset.UtcNow, user, $"{change} {logIndex}");

    public async Task<IReadOnlyList<(string User, OperatorChange Change, long LogIndex)>> TakeAllAsync()
    {
        if (await _queue.CountAsync(Queue) == 0) return [];
        var items = await _queue.TakeAsync(Queue, ArchiveQuery.All);
        return [.. items.Select(i => i.Value.Split(' ') is [var change, var index]
            ? (i.With, Enum.Parse<OperatorChange>(change), long.Parse(index, System.Globalization.CultureInfo.InvariantCulture))
            : (i.With, Enum.Parse<OperatorChange>(i.Value), -1L))];
    }

    /// <summary>How a notice names the operator log entry behind it (-1: queued before entries were cited).</summary>
    public static string Cite(long logIndex) => logIndex < 0 ? "" :
        $" (operator log entry #{logIndex}; the ad-hoc command \"What did the operator do with my account?\" lists it with its proof)";

    /// <summary>Applies queued changes until <paramref name="stopping"/>; changes queued while no server ran concern no session and are
    /// dropped at start, except archive purges and data exports, which are announced, and removals, whose uploaded files go.</summary>
    public static async Task ApplyWhileRunningAsync(XmppServer server, CancellationToken stopping)
    {
        var changes = new OperatorChanges(server.Storage);
        var log = server.LoggerFactory.CreateLogger<OperatorChanges>();
        // A purged archive or an export is news to the account whenever it happened: the notice waits in offline storage.
        foreach (var (user, change, index) in await changes.TakeAllAsync())
            if (change is not OperatorChange.PasswordChanged) await ApplyAsync(server, user, change, index);
        using var timer = new PeriodicTimer(PollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    foreach (var (user, change, index) in await changes.TakeAllAsync())
                        await ApplyAsync(server, user, change, index);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogError(e, "applying account changes made by the operator failed");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task ApplyAsync(XmppServer server, string user, OperatorChange change, long logIndex)
    {
        switch (change)
        {
            case OperatorChange.PasswordChanged:
                await server.Hooks.PasswordChanged.FireAsync(new PasswordChange(user, By: null, logIndex));
                break;
            case OperatorChange.Removed:
                // The files live beside the database, where only the server knows whose they are.
                server.Uploads?.DeleteOwnedBy(user);
                server.EndSessions(user, StreamErrors.NotAuthorized, "the account was removed by the operator" + Cite(logIndex));
                break;
            case OperatorChange.ArchivePurged:
                await NotifyAsync(server, user, "purge", $"The operator deleted your message archive on this server at {XmppTime.FormatSeconds(DateTimeOffset.UtcNow)}{Cite(logIndex)}. "
                    + "Copies your clients keep are not affected.");
                break;
            case OperatorChange.DataExported:
                await NotifyAsync(server, user, "export", $"The operator exported your account's data from this server to a file (XEP-0227: contacts, vCard, private and PEP data, "
                    + $"offline messages, message archive and password verifiers){Cite(logIndex)}. The entry says when.");
                break;
        }
    }

    /// <summary>To the bare JID: the account's online clients see it now, or offline storage keeps it for the next login.</summary>
    private static ValueTask NotifyAsync(XmppServer server, string user, string idPrefix, string text)
    {
        var notice = new Element("message", Ns.Client).SetAttribute("to", Jid.Create(user, server.Domain.Domain).ToString()).SetAttribute("type", "chat")
            .SetAttribute("id", idPrefix + "-" + Guid.NewGuid().ToString("N")[..12]);
        notice.AddChild("body").AddText(text);
        return server.SendAsync(notice);
    }
}
