using System.Collections.Concurrent;
using System.Net;

namespace Candor.Server.Accounts;

/// <summary>
/// Slows repeated failed logins per account and per address. Each failure doubles the wait before the next
/// attempt (from the third failure on), up to a cap; failures are forgotten after a quiet period. There is no
/// lockout: a stranger hammering an account (from one address or many) can only make its owner wait at most
/// <see cref="MaxDelay"/> per attempt. The numbers are ServerOptions' <c>AuthFailuresBeforeDelay</c>,
/// <c>AuthMaxDelaySeconds</c> and <c>AuthFailureMemoryMinutes</c>.
/// </summary>
public sealed class AuthThrottle(TimeProvider time, int freeFailures = 2, TimeSpan? maxDelay = null, TimeSpan? forgetAfter = null)
{
    private const int MaxTracked = 100_000;
    private readonly int FreeFailures = freeFailures;
    private readonly TimeSpan ForgetAfter = forgetAfter ?? TimeSpan.FromMinutes(15);

    public TimeSpan MaxDelay { get; } = maxDelay ?? TimeSpan.FromSeconds(8);

    private readonly ConcurrentDictionary<string, (int Failures, DateTimeOffset Last)> _failures = new();

    public TimeSpan DelayFor(IPAddress address, string? user)
    {
        var delay = DelayOf("ip:" + Core.AddressKeys.Of(address));
        var accountDelay = user is null ? TimeSpan.Zero : DelayOf("user:" + user);
        return accountDelay > delay ? accountDelay : delay;
    }

    public void RecordFailure(IPAddress address, string? user)
    {
        if (_failures.Count > MaxTracked) Prune();
        Bump("ip:" + Core.AddressKeys.Of(address));
        if (user is not null) Bump("user:" + user);
    }

    public void RecordSuccess(IPAddress address) => _failures.TryRemove("ip:" + Core.AddressKeys.Of(address), out _);

    private TimeSpan DelayOf(string key)
    {
        if (!_failures.TryGetValue(key, out var entry)) return TimeSpan.Zero;
        if (time.GetUtcNow() - entry.Last > ForgetAfter) return TimeSpan.Zero;
        if (entry.Failures <= FreeFailures) return TimeSpan.Zero;
        var seconds = Math.Pow(2, Math.Min(entry.Failures - FreeFailures - 1, 10)) * 0.5;
        return TimeSpan.FromSeconds(Math.Min(seconds, MaxDelay.TotalSeconds));
    }

    private void Bump(string key)
    {
        var now = time.GetUtcNow();
        _failures.AddOrUpdate(key, _ => (1, now),
            (_, e) => now - e.Last > ForgetAfter ? (1, now) : (e.Failures + 1, now));
    }

    private void Prune()
    {
        var now = time.GetUtcNow();
        foreach (var (key, entry) in _failures)
            if (now - entry.Last > ForgetAfter) _failures.TryRemove(key, out _);
    }
}
