using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>
/// A tiny fake XMPP server on loopback that follows a script per connection: it can negotiate a session the
/// simple way (STARTTLS with its own certificate, PLAIN, bind) and then misbehave as the test needs.
/// </summary>
public sealed class ScriptedServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<ScriptedConnection, int, Task> _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private Task _accept = Task.CompletedTask;
    private int _count;

    public static readonly X509Certificate2 Certificate = CreateCertificate();
    public static string Fingerprint => Certificate.GetCertHashString(HashAlgorithmName.SHA256);

    private ScriptedServer(Func<ScriptedConnection, int, Task> script) => _script = script;

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public int Connections => Volatile.Read(ref _count);

    /// <summary>Runs <paramref name="script"/> for every connection (with its 1-based number).</summary>
    public static ScriptedServer Start(Func<ScriptedConnection, int, Task> script)
    {
        var server = new ScriptedServer(script);
        server._listener.Start();
        server._accept = server.AcceptAsync();
        return server;
    }

    public XmppClientOptions Options(string jid = "alice@localhost") => new()
    {
        Jid = Candor.Xmpp.Jid.Parse(jid),
        Password = "secret",
        Host = "127.0.0.1",
        Port = Port,
        CertificateFingerprint = Fingerprint,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        RequestTimeout = TimeSpan.FromSeconds(2),
    };

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            var number = Interlocked.Increment(ref _count);
            lock (_connections) _connections.Add(Task.Run(async () =>
            {
                await using var connection = new ScriptedConnection(socket, _stop.Token);
                try
                {
                    await _script(connection, number);
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
                {
                }
            }));
        }
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
        Task[] running;
        lock (_connections) running = [.. _connections];
        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(10));
    }
}

public sealed class ScriptedConnection(Socket socket, CancellationToken stop) : IAsyncDisposable
{
    public const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>";
    private Stream _stream = new NetworkStream(socket, ownsSocket: true);
    private readonly StringBuilder _received = new();

    public string Received => _received.ToString();

    public Task SendAsync(string text) => _stream.WriteAsync(Encoding.UTF8.GetBytes(text), stop).AsTask();

    /// <summary>
    /// Reads until everything received since the last match contains <paramref name="text"/>; returns what came
    /// before it.
    /// </summary>
    public async Task<string> ExpectAsync(string text)
    {
        var buffer = new byte[4096];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        while (!_received.ToString().Contains(text, StringComparison.Ordinal))
        {
            var n = await _stream.ReadAsync(buffer, timeout.Token);
            if (n == 0) throw new IOException($"client closed while the server expected '{text}'; got: {_received}");
            _received.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        var all = _received.ToString();
        var at = all.IndexOf(text, StringComparison.Ordinal);
        _received.Clear().Append(all[(at + text.Length)..]);
        return all[..at];
    }

    /// <summary>STARTTLS, PLAIN (any password), bind alice@localhost/res: the client ends up connected.</summary>
    public async Task NegotiateAsync()
    {
        await StartTlsAsync();
        await SendAsync(Header + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
        await ExpectAsync("</auth>");
        await SendAsync("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        await ExpectAsync("<stream:stream");
        await ExpectAsync(">");
        await SendAsync(Header + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
        await BindAsync();
    }

    /// <summary>Offers only STARTTLS, completes the handshake and reads the client's new stream header (not answered yet).</summary>
    public async Task StartTlsAsync()
    {
        await ExpectAsync("<stream:stream");
        await ExpectAsync(">");
        await SendAsync(Header + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
        await ExpectAsync("<starttls");
        await ExpectAsync(">");
        await SendAsync("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        var ssl = new SslStream(_stream);
        await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = ScriptedServer.Certificate }, stop);
        _stream = ssl;
        _received.Clear();
        await ExpectAsync("<stream:stream");
        await ExpectAsync(">");
    }

    /// <summary>Answers the client's bind request with alice@localhost/res.</summary>
    public async Task BindAsync()
    {
        await ExpectAsync("id='");
        var rest = Received;
        var id = rest[..rest.IndexOf('\'')];
        await ExpectAsync("</iq>");
        await SendAsync($"<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/res</jid></bind></iq>");
    }

    /// <summary>Waits until the client closes the connection (or the test ends).</summary>
    public async Task DrainAsync()
    {
        var buffer = new byte[4096];
        while (await _stream.ReadAsync(buffer, stop) > 0)
        {
        }
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();
}
