using System.Net;
using Candor.Server.Core;
using Candor.Server.Hosting;
using Candor.Xmpp;

namespace Candor.Server.Connections;

/// <summary>How far a stream has come toward a bound resource; the order of the values is the order of progress.</summary>
public enum LoginPhase
{
    /// <summary>Connected; waits for the stream header (on the direct TLS port, for the handshake).</summary>
    Connected,
    /// <summary>Header answered; waits for STARTTLS and its handshake.</summary>
    Opened,
    /// <summary>In the TLS handshake.</summary>
    Handshaking,
    /// <summary>TLS is up; waits for the restarted stream header.</summary>
    Secured,
    /// <summary>SASL offered; waits for a successful authentication.</summary>
    Negotiating,
    /// <summary>Authenticated; waits for resource binding.</summary>
    Authenticated,
}

/// <summary>
/// Caps streams that have not yet bound a resource, per address (an IPv6 /64 counts as one, see
/// <see cref="AddressKeys"/>) and in total, and gives each phase of a login its own deadline. Over the
/// per-address cap the newcomer is refused (its own address holds the places); at the total cap the
/// stalest stream is shed to admit it, so that a flood of half-open logins from many addresses costs the
/// attacker its places, not honest users theirs. Loopback has its own per-address allowance (load
/// generators, proxies on the same machine).
/// </summary>
public sealed class ConnectionLimits(ServerOptions options, TimeProvider? time = null)
{
    /// <summary>
    /// A stream that made progress this recently is not shed for one that made less: it is most likely a
    /// client on its way in, and without this a flood of streams that stop right after their header would
    /// shed every newcomer before its header arrives.
    /// </summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly object _lock = new();
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    /// <summary>The counted streams by phase, each list in the order they reached the phase.</summary>
    private readonly LinkedList<PendingLogin>[] _byPhase = [.. Enum.GetValues<LoginPhase>().Select(_ => new LinkedList<PendingLogin>())];
    private int _total;
    private int _maxTotal = options.MaxUnauthenticatedStreams;

    /// <summary>The total cap: <see cref="ServerOptions.MaxUnauthenticatedStreams"/>, or less if the file limit says so.</summary>
    public int MaxTotal => _maxTotal;

    /// <summary>
    /// Lowers the total cap to half the connections the process can hold, so that a flood of half-open logins meets
    /// this cap (shedding the stalest at once) before it meets the file limit. Returns the cap.
    /// </summary>
    public int FitTo(int connectionCapacity) => _maxTotal = Math.Max(1, Math.Min(options.MaxUnauthenticatedStreams, connectionCapacity / 2));

    /// <summary>Unauthenticated streams counted now.</summary>
    public int Count
    {
        get
        {
            lock (_lock) return _total;
        }
    }

    /// <summary>
    /// Counts a new unauthenticated stream, shedding the stalest one if the total cap is reached; null (and
    /// nothing counted) when the stream's own address is over its cap. <paramref name="end"/> is how the stream
    /// is ended (stream error condition and text) when it is shed or a deadline passes.
    /// </summary>
    public PendingLogin? TryEnter(IPAddress address, Action<string, string> end, out string reason)
    {
        reason = "";
        var key = AddressKeys.Of(address);
        var limit = IPAddress.IsLoopback(address) ? options.MaxUnauthenticatedStreamsLoopback : options.MaxUnauthenticatedStreamsPerAddress;
        PendingLogin login;
        PendingLogin? shed = null;
        lock (_lock)
        {
            var count = _perAddress.GetValueOrDefault(key);
            if (count >= limit)
            {
                reason = "too many unauthenticated connections from your address";
                return null;
            }
            if (_total >= _maxTotal)
            {
                shed = StalestLocked();
                RemoveLocked(shed!);
            }
            _perAddress[key] = count + 1;
            _total++;
            login = new PendingLogin(this, key, end, Now);
            _byPhase[(int)LoginPhase.Connected].AddLast(login.Node);
        }
        shed?.End(StreamErrors.ResourceConstraint, "too many connections are logging in right now; this one made the least progress");
        login.StartTimer(PhaseDeadline(LoginPhase.Connected), options.AuthenticationTimeoutSeconds);
        return login;
    }

    /// <summary>
    /// Sheds up to <paramref name="count"/> of the stalest streams (the server is short of file descriptors), only
    /// among those that made no progress within <see cref="Grace"/>: a fresh login is likelier an honest client than
    /// the cause. Returns how many.
    /// </summary>
    public int ShedStalest(int count)
    {
        var shed = new List<PendingLogin>(count);
        lock (_lock)
        {
            while (shed.Count < count && StalestLocked(staleOnly: true) is { } stalest)
            {
                RemoveLocked(stalest);
                shed.Add(stalest);
            }
        }
        foreach (var login in shed) login.End(StreamErrors.ResourceConstraint, "the server is short of resources; this connection made the least progress toward logging in");
        return shed.Count;
    }

    private long Now => _time.GetTimestamp();

    internal TimeSpan Elapsed(long since) => _time.GetElapsedTime(since);

    /// <summary>
    /// The stream with the least progress for the longest time: the longest-waiting one of the lowest phase
    /// among those past <see cref="Grace"/>; when every stream made progress within it (connections come faster
    /// than the cap per grace period), the longest-waiting one of the lowest phase. A client in a slow TLS
    /// handshake or SASL exchange is then kept, at the price of the newest arrivals. With
    /// <paramref name="staleOnly"/>, none in that case.
    /// </summary>
    private PendingLogin? StalestLocked(bool staleOnly = false)
    {
        var now = Now;
        PendingLogin? lowest = null;
        foreach (var list in _byPhase)
        {
            if (list.First?.Value is not { } first) continue;
            if (_time.GetElapsedTime(first.Since, now) >= Grace) return first;
            lowest ??= first;
        }
        return staleOnly ? null : lowest;
    }

    private void RemoveLocked(PendingLogin login)
    {
        login.Node.List!.Remove(login.Node);
        _total--;
        var count = _perAddress[login.Address];
        if (count <= 1) _perAddress.Remove(login.Address);
        else _perAddress[login.Address] = count - 1;
    }

    /// <summary>Moves a login on to <paramref name="phase"/>; false when it is no longer counted (shed, or left).</summary>
    internal bool Advance(PendingLogin login, LoginPhase phase)
    {
        lock (_lock)
        {
            if (login.Node.List is null || phase <= login.Phase) return false;
            login.Node.List.Remove(login.Node);
            login.Phase = phase;
            login.Since = Now;
            _byPhase[(int)phase].AddLast(login.Node);
        }
        return true;
    }

    /// <summary>Stops counting a login; false when it was no longer counted.</summary>
    internal bool Leave(PendingLogin login)
    {
        lock (_lock)
        {
            if (login.Node.List is null) return false;
            RemoveLocked(login);
        }
        return true;
    }

    /// <summary>Seconds allowed for the step a stream in <paramref name="phase"/> waits for; 0 when only the overall deadline applies.</summary>
    internal int PhaseDeadline(LoginPhase phase) => phase switch
    {
        LoginPhase.Connected or LoginPhase.Secured => options.StreamHeaderTimeoutSeconds,
        LoginPhase.Opened or LoginPhase.Handshaking => options.TlsTimeoutSeconds,
        LoginPhase.Negotiating => options.SaslTimeoutSeconds,
        _ => 0,
    };
}

/// <summary>
/// One counted unauthenticated stream: its phase, since when, and the timer for its deadline (the phase's
/// own, or what is left of <see cref="ServerOptions.AuthenticationTimeoutSeconds"/> if that comes first).
/// Disposed once the stream binds a resource or ends.
/// </summary>
public sealed class PendingLogin : IDisposable
{
    private readonly ConnectionLimits _limits;
    private readonly Action<string, string> _end;
    private readonly long _connected;
    private Timer? _timer;
    private int _overallSeconds;
    private string _expiry = "";

    internal PendingLogin(ConnectionLimits limits, IPAddress address, Action<string, string> end, long now)
    {
        _limits = limits;
        Address = address;
        _end = end;
        _connected = now;
        Since = now;
        Node = new LinkedListNode<PendingLogin>(this);
    }

    public LoginPhase Phase { get; internal set; }
    internal IPAddress Address { get; }
    /// <summary>When the login reached its phase (a <see cref="TimeProvider"/> timestamp).</summary>
    internal long Since { get; set; }
    internal LinkedListNode<PendingLogin> Node { get; }

    /// <summary>Records progress; moving from <see cref="LoginPhase.Opened"/> into the handshake keeps the TLS deadline running.</summary>
    public void Advance(LoginPhase phase)
    {
        var from = Phase;
        if (!_limits.Advance(this, phase)) return;
        if (phase == LoginPhase.Handshaking && from == LoginPhase.Opened) return;
        SetDeadline(_limits.PhaseDeadline(phase));
    }

    internal void StartTimer(int phaseSeconds, int overallSeconds)
    {
        _overallSeconds = overallSeconds;
        _timer = new Timer(static state => ((PendingLogin)state!).Expire(), this, Timeout.Infinite, Timeout.Infinite);
        SetDeadline(phaseSeconds);
    }

    private void SetDeadline(int phaseSeconds)
    {
        var left = TimeSpan.FromSeconds(_overallSeconds) - _limits.Elapsed(_connected);
        var due = left;
        _expiry = "authentication took too long";
        if (phaseSeconds > 0 && TimeSpan.FromSeconds(phaseSeconds) < left)
        {
            due = TimeSpan.FromSeconds(phaseSeconds);
            _expiry = Phase switch
            {
                LoginPhase.Connected or LoginPhase.Secured => $"no stream header within {phaseSeconds} s",
                LoginPhase.Opened or LoginPhase.Handshaking => $"TLS not negotiated within {phaseSeconds} s",
                _ => $"no successful authentication within {phaseSeconds} s",
            };
        }
        try
        {
            _timer?.Change(due < TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // shed meanwhile
        }
    }

    private void Expire()
    {
        if (_limits.Leave(this)) End(StreamErrors.ConnectionTimeout, _expiry);
    }

    internal void End(string condition, string text)
    {
        _timer?.Dispose();
        _end(condition, text);
    }

    public void Dispose()
    {
        _timer?.Dispose();
        _limits.Leave(this);
    }
}

/// <summary>
/// A token bucket over the bytes a stream sends us: within the rate (and burst) nothing happens; beyond
/// it the reader pauses until the bucket refills, which slows the sender through TCP back-pressure
/// instead of disconnecting it.
/// </summary>
public sealed class InboundRate(int bytesPerSecond, int burstBytes)
{
    private double _tokens = burstBytes;
    private long _lastTicks = Environment.TickCount64;

    /// <summary>Takes the bytes just read; returns how long to wait before reading on.</summary>
    public TimeSpan Take(long bytes)
    {
        var now = Environment.TickCount64;
        _tokens = Math.Min(burstBytes, _tokens + (now - _lastTicks) * bytesPerSecond / 1000.0);
        _lastTicks = now;
        _tokens -= bytes;
        return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(-_tokens * 1000.0 / bytesPerSecond);
    }
}
