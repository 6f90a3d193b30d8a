using System.Buffers;
using System.Net;
using Candor.Server.Core;
using Candor.Server.Hosting;
using Candor.Server.Modules;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging.Abstractions;

namespace Candor.Benchmarks;

/// <summary>
/// What the in-process benchmarks share: a server with every module on sealed SQLite storage, as <c>candor serve</c>
/// opens it, in a temporary directory (deleted on dispose), sessions bound over <see cref="CountingTransport"/>s, and stanzas parsed as a c2s stream parses them.
/// </summary>
public sealed class BenchServer : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-bench-").FullName;
    private readonly XmppStreamParser _parser = new(XmlLimits.Default, fragmentMode: true);

    /// <param name="archiveDefault">As <c>bench/compare.sh</c> starts Candor: "never" unless the archive is what is measured.</param>
    public BenchServer(string archiveDefault = "always")
    {
        var options = new ServerOptions { DataDirectory = _directory, ArchiveDefault = archiveDefault };
        options.Validate();
        Server = new XmppServer(options, SealedStorage.OpenAsync(options).GetAwaiter().GetResult(), NullLoggerFactory.Instance);
        ModuleCatalog.RegisterAll(Server);
    }

    public XmppServer Server { get; }

    /// <summary>A bound session of <paramref name="jid"/> (available: it has sent initial presence).</summary>
    public Session AddSession(string jid, ISessionTransport transport, bool available = true)
    {
        var session = new Session(transport, Jid.Parse(jid), "SCRAM-SHA-256") { IsAvailable = available };
        Server.Sessions.TryAdd(session, limit: 1, out _);
        return session;
    }

    /// <summary>The stanza in <paramref name="xml"/> (one, with its namespace declared), parsed.</summary>
    public Element Parse(byte[] xml)
    {
        _parser.Read(new ReadOnlySequence<byte>(xml), out _, out var stanza);
        return stanza!;
    }

    public void Dispose()
    {
        Server.Storage.DisposeAsync().AsTask().Wait();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>A session's transport that counts what it is sent; with <c>serialize</c> it also writes each stanza as a c2s stream would (into a reused buffer, no socket).</summary>
public sealed class CountingTransport(bool serialize = false) : ISessionTransport
{
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private long _delivered;

    public long Delivered => Interlocked.Read(ref _delivered);

    public void Send(Element stanza)
    {
        if (serialize)
            lock (_buffer)
            {
                _buffer.ResetWrittenCount();
                ElementWriter.Write(stanza, _buffer, Ns.Client);
            }
        Interlocked.Increment(ref _delivered);
    }

    public void Close(string? condition, string? text = null) { }
    public IPAddress RemoteAddress => IPAddress.Loopback;
    public bool IsSecure => true;
    public string? TlsProtocol => "TLSv1.3";
    public string TransportName => "TCP";
}
