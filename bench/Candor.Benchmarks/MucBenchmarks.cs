using System.Buffers;
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
/// One groupchat message into a room of 100 or 1,000 occupants: parse, policy, the room's fan-out, and every
/// copy serialized as the transport would (into a reused buffer here, so no socket is measured). One
/// operation delivers to every occupant.
/// </summary>
[MemoryDiagnoser]
public class MucBenchmarks
{
    private XmppServer _server = null!;
    private Session _speaker = null!;
    private byte[] _message = [];
    private XmppStreamParser _parser = null!;
    private string _directory = "";
    private readonly WriterTransport _transport = new();

    [Params(100, 1000)]
    public int Occupants { get; set; }

    /// <summary>Writes each stanza as a c2s stream would, then forgets it.</summary>
    private sealed class WriterTransport : ISessionTransport
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(4096);
        public string TransportName => "benchmark";
        public long Delivered;

        public void Send(Element stanza)
        {
            _buffer.ResetWrittenCount();
            ElementWriter.Write(stanza, _buffer, Ns.Client);
            Delivered++;
        }

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
        options.Validate();
        _server = new XmppServer(options, new SqliteStorage(Path.Combine(_directory, "candor.db")), NullLoggerFactory.Instance);
        ModuleCatalog.RegisterAll(_server);
        for (var i = 0; i < Occupants; i++)
        {
            var session = new Session(_transport, Jid.Parse($"u{i}@localhost/bench"), "SCRAM-SHA-256") { IsAvailable = true };
            _server.Sessions.TryAdd(session, limit: 1, out _);
            // No <x xmlns='http://jabber.org/protocol/muc'/>: the first one makes an instant room.
            var join = new Element("presence", Ns.Client).SetAttribute("to", $"bench@conference.localhost/u{i}");
            SessionInput.HandleAsync(_server, session, join).AsTask().Wait();
            if (i == 0) _speaker = session;
        }
        _message = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' to='bench@conference.localhost' type='groupchat' id='m1'>"
                                          + "<body>Hello everyone, how are you today?</body></message>");
        _parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server.Storage.DisposeAsync().AsTask().Wait();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark]
    public async ValueTask<long> GroupchatToEveryOccupant()
    {
        _parser.Read(new ReadOnlySequence<byte>(_message), out _, out var stanza);
        await SessionInput.HandleAsync(_server, _speaker, stanza!);
        return _transport.Delivered;
    }
}
