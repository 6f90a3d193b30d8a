using System.Diagnostics;
using System.Threading.Channels;
using Candor.Server.Storage;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Archive;

/// <summary>
/// Archive writes off the routing path: <see cref="Append"/> seals the entry on the caller's thread (in parallel,
/// <see cref="IPreparingArchiveStore"/>) and queues it, and one background loop stores everything queued since its
/// last pass in one transaction, after letting a short queue grow for <see cref="Linger"/>. Each pass is a batch with a task that completes once the batch is durable (SQLite WAL,
/// synchronous=NORMAL), which is what a stream management ack or a query that must see its own writes waits for
/// (and waiting cuts the linger short).
/// </summary>
public sealed partial class ArchiveWriter
{
    /// <summary>
    /// Entries written per transaction at most; a longer queue takes several. As many as may queue before appenders
    /// are braked: a batch rewrites a page of the per-account index for each account it touches, so a longer one
    /// costs less per entry (at 200 accounts, 8,000 against 2,000: 15-20 % more entries per second on one writer).
    /// </summary>
    public const int MaxBatch = MaxQueued;
    /// <summary>
    /// How long the writer lets a queue grow before writing it, unless something waits for it (an ack, a query). A
    /// commit costs about the pages it touches (the end of the table and each account's part of its index) whatever
    /// the number of entries, so at full load a tenth of a second's entries per commit cost a fraction of what
    /// 10 ms's did (docs/PERFORMANCE.md, seventh pass). What waits for durability hurries the writer; what does not
    /// (a message from a client without stream management, delivered already) is at most this long in memory only.
    /// </summary>
    public static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(100);
    /// <summary>A queue this long is written at once: the writer stops lingering when an append makes it this long.</summary>
    public const int LingerBelow = MaxQueued / 2;
    /// <summary>Queued entries beyond which appenders are braked (<see cref="Throttle"/>).</summary>
    public const int MaxQueued = 8_000;

    private readonly IArchiveStore _store;
    private readonly IPreparingArchiveStore? _preparing;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
    });
    private List<ArchiveEntry> _queued = [];
    private TaskCompletionSource _next = NewBatch();
    private Task _writing = Task.CompletedTask;
    private readonly ManualResetEventSlim _hurry = new(false);
    private readonly Task _loop;
    private readonly TimeSpan _linger;
    private volatile bool _stopping;

    public ArchiveWriter(IArchiveStore store, ILogger logger, TimeSpan? linger = null)
    {
        _store = store;
        _linger = linger ?? Linger;
        _preparing = store as IPreparingArchiveStore;
        _logger = logger;
        // A thread of its own: the writes block (SQLite has no asynchronous I/O), and on a pool thread they would
        // hold up the routing of other stanzas on a busy machine until the pool grew.
        _loop = Task.Factory.StartNew(Loop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Entries queued and not yet taken by a write.</summary>
    public int Queued
    {
        get { lock (_lock) return _queued.Count; }
    }

    /// <summary>
    /// Queues the entry (with <paramref name="next"/>, one that shares its <see cref="ArchiveEntry.Body"/>, right after
    /// it); the task completes when they are durable, or fails when their batch could not be written.
    /// </summary>
    public Task Append(ArchiveEntry entry, ArchiveEntry? next = null)
    {
        if (_preparing is not null)
        {
            entry = _preparing.Prepare(entry);
            if (next is not null) next = _preparing.Prepare(next);
        }
        Task batch;
        bool full;
        lock (_lock)
        {
            _queued.Add(entry);
            if (next is not null) _queued.Add(next);
            batch = _next.Task;
            full = _queued.Count >= LingerBelow;
        }
        // Lingering on a full queue would hold the senders braked beyond MaxQueued until the linger ends.
        if (full) _hurry.Set();
        _wake.Writer.TryWrite(true);
        return batch;
    }

    /// <summary>
    /// Backpressure for appenders, a gradual brake: completes at once while at most <see cref="MaxQueued"/> entries
    /// wait; beyond that when the write under way ends (between writes: when the next one does), after which the
    /// writer takes the whole queue. An appender waits about one write at most, never for the queue to drain.
    /// </summary>
    public Task Throttle()
    {
        lock (_lock)
        {
            if (_queued.Count <= MaxQueued) return Task.CompletedTask;
            return _writing.IsCompleted ? _next.Task : _writing;
        }
    }

    /// <summary>Completes when everything appended so far is durable (or its batch failed); the writer stops lingering for it.</summary>
    public Task WhenWritten()
    {
        lock (_lock)
        {
            if (_queued.Count == 0) return _writing;
            _hurry.Set();
            return _next.Task;
        }
    }

    /// <summary>Writes what is queued and stops the loop (without lingering); later appends are not written.</summary>
    public async Task StopAsync()
    {
        _stopping = true;
        _wake.Writer.TryComplete();
        _hurry.Set();
        await _loop;
    }

    private void Loop()
    {
        while (_wake.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            _wake.Reader.TryRead(out _);
            if (!_stopping && Queued < LingerBelow) _hurry.Wait(_linger);
            // Whoever hurried is served by this write: it takes everything queued so far.
            _hurry.Reset();
            WriteQueued();
        }
        WriteQueued();
    }

    private void WriteQueued()
    {
        List<ArchiveEntry> entries;
        TaskCompletionSource batch;
        lock (_lock)
        {
            if (_queued.Count == 0) return;
            entries = _queued;
            batch = _next;
            _queued = [];
            _next = NewBatch();
            _writing = batch.Task;
        }
        try
        {
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < entries.Count; i += MaxBatch)
            {
                var batchEntries = i == 0 && entries.Count <= MaxBatch ? entries : entries.GetRange(i, Math.Min(MaxBatch, entries.Count - i));
                (_preparing?.AppendPreparedAsync(batchEntries) ?? _store.AppendBatchAsync(batchEntries)).GetAwaiter().GetResult();
            }
            Log.Written(_logger, entries.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            batch.SetResult();
        }
        catch (Exception e)
        {
            Log.WriteFailed(_logger, e, entries.Count);
            batch.SetException(e);
        }
    }

    // Continuations run elsewhere: the loop must not run a waiting session's routing inline.
    private static TaskCompletionSource NewBatch() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "Archived {Count} messages in {Milliseconds} ms")]
        public static partial void Written(ILogger logger, int count, double milliseconds);

        [LoggerMessage(Level = LogLevel.Error, Message = "Archiving {Count} messages failed: they were delivered but are not in the archive")]
        public static partial void WriteFailed(ILogger logger, Exception exception, int count);
    }
}
