using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests.Hostile;

[CollectionDefinition(Name)]
public sealed class HostileCollection : ICollectionFixture<HostileServer>
{
    public const string Name = "hostile";
}

/// <summary>
/// One server for the whole hostile-input suite, with an honest pair (alice and bob) chatting on it from the first
/// case to the last: every case checks that the pair is still served once the attack is over, and when the suite
/// ends the fixture checks that every message the pair sent arrived (none lost) — a failure there fails the run.
/// A third honest user, the victim, is the target of attacks that try to reach someone.
/// </summary>
public sealed class HostileServer : IAsyncLifetime
{
    /// <summary>The limits the suite runs under: the defaults, smaller where a case has to reach them quickly.</summary>
    public static void Configure(ServerOptions o)
    {
        o.HttpPort = 0;                        // WebSocket cases
        o.AuthenticationTimeoutSeconds = 4;    // slow-loris cases wait for it
        o.MaxUnauthenticatedStreamsLoopback = 40;
        o.MaxStanzaBytes = 64 * 1024;
        o.MaxXmlAttributeBytes = 16 * 1024;
        // The suite fails many logins from 127.0.0.1 on purpose; the growing delay (tested in SaslTests) would only
        // slow it down. Failures are still counted per stream (MaxSaslFailuresPerStream).
        o.AuthMaxDelaySeconds = 0;
    }

    private readonly CancellationTokenSource _stop = new();
    private Task _chat = Task.CompletedTask;
    private long _sent, _received;

    public ServerFixture Server { get; private set; } = null!;
    public XmppTestClient Alice { get; private set; } = null!;
    public XmppTestClient Bob { get; private set; } = null!;
    public XmppTestClient Victim { get; private set; } = null!;
    /// <summary>An account for attacks from a logged-in session; each such case binds its own resource.</summary>
    public string Mallory { get; private set; } = "";
    public Exception? ChatFailure { get; private set; }
    public long Sent => Interlocked.Read(ref _sent);
    public long Received => Interlocked.Read(ref _received);
    public int C2sPort => Server.C2sPort;
    public int HttpPort => Server.Host.HttpPort;

    public async Task InitializeAsync()
    {
        Server = await ServerFixture.StartAsync(Configure);
        Alice = await Server.OnlineUserAsync("alice");
        Bob = await Server.OnlineUserAsync("bob");
        Victim = await Server.OnlineUserAsync("victim");
        Mallory = await Server.CreateUserAsync("mallory");
        _chat = Task.Run(ChatAsync);
    }

    /// <summary>Alice and Bob take turns, each message waited for before the next: any loss or long delay stops the loop with the reason.</summary>
    private async Task ChatAsync()
    {
        var timeout = TimeSpan.FromSeconds(15);
        try
        {
            for (var n = 0; !_stop.IsCancellationRequested; n++)
            {
                var (from, to) = n % 2 == 0 ? (Alice, Bob) : (Bob, Alice);
                Interlocked.Increment(ref _sent);
                await from.SendMessageAsync(to.Full, "honest " + n);
                await to.ExpectMessageAsync("honest " + n, timeout);
                Interlocked.Increment(ref _received);
                await Task.Delay(20);
            }
        }
        catch (Exception e)
        {
            ChatFailure = e;
        }
    }

    /// <summary>The pair is still being served: more messages get through, within a generous time.</summary>
    public async Task AssertPairStillServedAsync()
    {
        var target = Received + 2;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (Received < target && ChatFailure is null && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.True(ChatFailure is null, "the honest pair's chat failed: " + ChatFailure?.Message);
        Assert.True(Received >= target, $"the honest pair got no message through for 20 s (received {Received})");
    }

    public Task<XmppTestClient> LoginMalloryAsync(string? resource = null) =>
        XmppTestClient.LoginAsync(C2sPort, Mallory, ServerFixture.Password(Mallory), resource ?? "attack-" + Guid.NewGuid().ToString("N")[..8]);

    public async Task DisposeAsync()
    {
        _stop.Cancel();
        await _chat.WaitAsync(TimeSpan.FromSeconds(30));
        var failure = ChatFailure;
        var (sent, received) = (Sent, Received);
        await Alice.DisposeAsync();
        await Bob.DisposeAsync();
        await Victim.DisposeAsync();
        await Server.DisposeAsync();
        // Thrown here, this fails the test run: the suite's promise is that honest users lost nothing.
        if (failure is not null) throw new InvalidOperationException("the honest pair's chat failed during the hostile suite", failure);
        if (sent != received || received < 20)
            throw new InvalidOperationException($"the honest pair sent {sent} messages and received {received} during the hostile suite");
    }
}
