using System.Net;
using System.Text;
using BenchmarkDotNet.Attributes;
using Candor.Server.Core;
using Candor.Server.Hosting;
using Candor.Server.Modules;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging.Abstractions;

namespace Candor.Benchmarks;

/// <summary>
/// Routing a chat message between two local sessions: 'from' stamping and checks, router, delivery rules,
/// down to the recipient's outbound queue (a counting sink here, so no socket is measured).
/// </summary>
[MemoryDiagnoser]
public class RoutingBenchmarks
{
    private XmppServer _server = null!;
    private Session _alice = null!;
    private SinkTransport _bobSink = null!;
    private byte[] _message = [];
    private XmppStreamParser _parser = null!;
    private string _directory = "";

    private sealed class SinkTransport : ISessionTransport
    {
        public string TransportName => "benchmark";
        public long Delivered;
        public void Send(Element stanza) => Delivered++;
        public void Close(string? condition, string? text = null) { }
        public IPAddress RemoteAddress => IPAddress.Loopback;
        public bool IsSecure => true;
        public string? TlsProtocol => "TLSv1.3";
    }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("candor-bench-").FullName;
        var options = new ServerOptions { DataDirectory = _directory };
        _server = new XmppServer(options, new SqliteStorage(Path.Combine(_directory, "candor.db")), NullLoggerFactory.Instance);
        ModuleCatalog.RegisterAll(_server);
        _alice = new Session(new SinkTransport(), Jid.Parse("alice@localhost/phone"), "SCRAM-SHA-256");
        _bobSink = new SinkTransport();
        var bob = new Session(_bobSink, Jid.Parse("bob@localhost/laptop"), "SCRAM-SHA-256") { IsAvailable = true };
        _server.Sessions.TryAdd(_alice, limit: 1, out _);
        _server.Sessions.TryAdd(bob, limit: 1, out _);
        _message = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m1'><body>Hello Bob, how are you today?</body></message>");
        _parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server.Storage.DisposeAsync().AsTask().Wait();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark]
    public async ValueTask<long> ParseAndRouteChatMessage()
    {
        _parser.Read(new System.Buffers.ReadOnlySequence<byte>(_message), out _, out var stanza);
        await SessionInput.HandleAsync(_server, _alice, stanza!);
        return _bobSink.Delivered;
    }
}
