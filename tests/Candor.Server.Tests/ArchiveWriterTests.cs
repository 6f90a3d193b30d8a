using Candor.Server.Modules.Archive;
using Candor.Server.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Candor.Server.Tests;

/// <summary>
/// The archive writer's brake on a storage slower than the senders: past its queue limit a sender waits for the
/// write under way, not for the whole queue behind it, and nothing queued is dropped.
/// </summary>
public class ArchiveWriterTests
{
    /// <summary>A store whose first writes each wait until the test lets them finish.</summary>
    private sealed class GatedStore : IArchiveStore
    {
        public readonly List<TaskCompletionSource> Started = [new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously)];
        public readonly List<TaskCompletionSource> Gates = [new(), new()];
        public int Written;
        private int _writes;

        public Task AppendBatchAsync(IReadOnlyList<ArchiveEntry> entries)
        {
            // The first two writes wait for their gate; the rest of a long queue (written in several parts) does not.
            var write = _writes++;
            if (write < Gates.Count)
            {
                Started[write].SetResult();
                Gates[write].Task.Wait();
            }
            Interlocked.Add(ref Written, entries.Count);
            return Task.CompletedTask;
        }

        public Task<long> AppendAsync(string user, DateTimeOffset when, string with, string value) => throw new NotSupportedException();
        public Task<IReadOnlyList<ArchiveItem>> QueryAsync(string user, ArchiveQuery query) => throw new NotSupportedException();
        public Task<IReadOnlyList<ArchiveItem>> TakeAsync(string user, ArchiveQuery query) => throw new NotSupportedException();
        public Task<int> CountAsync(string user) => throw new NotSupportedException();
        public Task<int> CountAsync(string user, ArchiveQuery query) => throw new NotSupportedException();
        public Task<int> DeleteAsync(string user) => throw new NotSupportedException();
        public Task<int> DeleteOlderThanAsync(DateTimeOffset before) => throw new NotSupportedException();
    }

    private static ArchiveEntry Entry(int i) => new("alice", "id" + i, DateTimeOffset.UtcNow, "bob@localhost", "<message/>");

    [Fact]
    public async Task A_queue_that_grows_long_is_written_without_waiting_out_the_linger()
    {
        var store = new GatedStore();
        store.Gates.ForEach(gate => gate.SetResult());
        var writer = new ArchiveWriter(store, NullLogger.Instance, linger: TimeSpan.FromHours(1));
        for (var i = 0; i < ArchiveWriter.LingerBelow - 1; i++) _ = writer.Append(Entry(i));
        await Task.Delay(200);
        Assert.False(store.Started[0].Task.IsCompleted);

        // The append that makes the queue long enough ends the linger: the write starts long before the hour is over.
        _ = writer.Append(Entry(ArchiveWriter.LingerBelow));
        await store.Started[0].Task.WaitAsync(TimeSpan.FromSeconds(30));
        await writer.WhenWritten().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ArchiveWriter.LingerBelow, store.Written);
        await writer.StopAsync();
    }

    [Fact]
    public async Task Past_the_queue_limit_a_sender_waits_for_the_write_under_way_and_nothing_is_dropped()
    {
        var store = new GatedStore();
        var writer = new ArchiveWriter(store, NullLogger.Instance);
        _ = writer.Append(Entry(0));
        await store.Started[0].Task.WaitAsync(TimeSpan.FromSeconds(30));

        for (var i = 1; i <= ArchiveWriter.MaxQueued + 1; i++) _ = writer.Append(Entry(i));
        var braked = writer.Throttle();
        Assert.False(braked.IsCompleted);

        // The write under way ends: the sender goes on while the queue it was part of is still being written.
        store.Gates[0].SetResult();
        await braked.WaitAsync(TimeSpan.FromSeconds(30));
        await store.Started[1].Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, store.Written);
        Assert.True(writer.Throttle().IsCompleted);

        store.Gates[1].SetResult();
        await writer.WhenWritten().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ArchiveWriter.MaxQueued + 2, store.Written);
        await writer.StopAsync();
    }
}
