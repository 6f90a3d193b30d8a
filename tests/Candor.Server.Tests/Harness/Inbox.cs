using System.Threading.Channels;

namespace Candor.Server.Tests.Harness;

/// <summary>
/// What a test client received, in order. <see cref="ExpectAsync"/> takes the first item matching a predicate,
/// waiting for it if need be, so a test states what it waits for and unrelated traffic (presence) does not break it;
/// the items passed over stay queued for later expectations.
/// </summary>
/// <param name="ends">True for an item after which nothing more can arrive (the connection ended).</param>
public sealed class Inbox<T>(Func<T, bool> ends) where T : class
{
    private readonly Channel<T> _received = Channel.CreateUnbounded<T>();
    private readonly List<T> _backlog = [];

    public void Post(T item) => _received.Writer.TryWrite(item);

    /// <summary>Takes the first item matching <paramref name="match"/>, waiting up to <paramref name="timeout"/>.</summary>
    public async Task<T> ExpectAsync(Func<T, bool> match, TimeSpan timeout)
    {
        var index = _backlog.FindIndex(e => match(e));
        if (index >= 0)
        {
            var found = _backlog[index];
            _backlog.RemoveAt(index);
            return found;
        }
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var next = await _received.Reader.ReadAsync(cts.Token);
                if (match(next)) return next;
                _backlog.Add(next);
                if (ends(next)) Assert.Fail($"expected item not received before the connection ended; received: {Describe()}");
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"expected item not received within {timeout.TotalSeconds} s; received: {Describe()}");
            throw;
        }
    }

    /// <summary>Asserts that nothing matching is received within the window (nor was before, untaken).</summary>
    public async Task ExpectNothingAsync(Func<T, bool> match, TimeSpan window)
    {
        var early = _backlog.FirstOrDefault(match);
        Assert.True(early is null, "unexpected item: " + early);
        using var cts = new CancellationTokenSource(window);
        try
        {
            while (true)
            {
                var next = await _received.Reader.ReadAsync(cts.Token);
                Assert.False(match(next), "unexpected item: " + next);
                _backlog.Add(next);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private string Describe() =>
        _backlog.Count == 0 ? "(nothing)" : string.Join("\n  ", _backlog.Select(e => e.ToString()));
}
