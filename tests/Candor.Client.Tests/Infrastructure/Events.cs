using System.Threading.Channels;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>Records a client's events so a test can wait for one that may already have arrived.</summary>
public sealed class EventLog
{
    private readonly List<XmppEvent> _events = [];
    private readonly Channel<bool> _changed = Channel.CreateUnbounded<bool>();

    public EventLog(XmppClient client)
    {
        client.EventReceived += e =>
        {
            lock (_events) _events.Add(e);
            _changed.Writer.TryWrite(true);
        };
    }

    public IReadOnlyList<XmppEvent> All
    {
        get { lock (_events) return [.. _events]; }
    }

    public async Task<T> WaitAsync<T>(Func<T, bool>? match = null, int seconds = 10) where T : XmppEvent
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            lock (_events)
            {
                var found = _events.OfType<T>().FirstOrDefault(e => match?.Invoke(e) ?? true);
                if (found is not null) return found;
            }
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                Assert.Fail($"no {typeof(T).Name} within {seconds} s; events: {string.Join("; ", All.Select(e => e.GetType().Name))}");
            using var cts = new CancellationTokenSource(remaining);
            try
            {
                await _changed.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
