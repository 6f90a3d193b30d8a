namespace Candor.Server.Core;

/// <summary>
/// An event that modules subscribe to with a priority. Handlers run from the highest priority down; the
/// first that returns true has handled the event and stops the chain (Prosody's util.events).
/// Typed hooks mean a misspelt event is a compile error, not a silent no-op.
/// </summary>
public sealed class Hook<T>
{
    private readonly Lock _lock = new();
    private (int Priority, Func<T, ValueTask<bool>> Handler)[] _handlers = [];

    public void Add(Func<T, ValueTask<bool>> handler, int priority = Priority.Default)
    {
        lock (_lock)
        {
            var list = _handlers.ToList();
            list.Add((priority, handler));
            // Stable: among equal priorities, the one added first runs first.
            _handlers = [.. list.Select((h, i) => (h, i)).OrderByDescending(x => x.h.Priority).ThenBy(x => x.i).Select(x => x.h)];
        }
    }

    public bool HasHandlers => _handlers.Length > 0;

    /// <summary>Runs the handlers in order; true when one of them handled the event.</summary>
    public ValueTask<bool> FireAsync(T args)
    {
        // Most handlers on the routing path finish synchronously: no state machine until one does not.
        var handlers = _handlers;
        for (var i = 0; i < handlers.Length; i++)
        {
            var pending = handlers[i].Handler(args);
            if (!pending.IsCompletedSuccessfully) return FireRestAsync(handlers, i, pending, args);
            if (pending.Result) return ValueTask.FromResult(true);
        }
        return ValueTask.FromResult(false);
    }

    private static async ValueTask<bool> FireRestAsync((int Priority, Func<T, ValueTask<bool>> Handler)[] handlers, int index, ValueTask<bool> pending, T args)
    {
        if (await pending) return true;
        for (var i = index + 1; i < handlers.Length; i++)
            if (await handlers[i].Handler(args)) return true;
        return false;
    }

    /// <summary>
    /// For a session's start and end, whose handlers are independent: runs them in order, and one that fails because
    /// the database did not answer in time is reported and does not keep the others from running or end the stream.
    /// </summary>
    public async ValueTask FireEachAsync(T args, Action<System.Data.Common.DbException> failed)
    {
        foreach (var (_, handler) in _handlers)
        {
            try
            {
                if (await handler(args)) return;
            }
            catch (System.Data.Common.DbException e) when (e.IsTransient)
            {
                failed(e);
            }
        }
    }
}

/// <summary>The one priority convention: higher runs earlier; modules that act as defaults use <see cref="Fallback"/>.</summary>
public static class Priority
{
    /// <summary>Checks that may refuse a stanza before anything else sees it (policy, limits).</summary>
    public const int Filter = 1000;
    /// <summary>Modules that observe or copy (carbons, archives) before delivery.</summary>
    public const int Observe = 500;
    public const int Default = 0;
    /// <summary>The core behaviour of RFC 6121, which any other handler may pre-empt.</summary>
    public const int Fallback = -1000;
}
