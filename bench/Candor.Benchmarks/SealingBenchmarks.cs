using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Candor.Server.Storage;

namespace Candor.Benchmarks;

/// <summary>
/// What sealing adds per stored record (docs/PERFORMANCE.md, "Sealed storage"): one AES-256-GCM seal or open of a
/// typical offline/archived chat message (a 300-byte stanza), and the keyed hash of a lookup key (an account name or
/// a JID). The allocations should be the result strings only. Min is shown beside the mean: on a shared machine
/// it is the better estimate of the cost itself.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
public class SealingBenchmarks
{
    private const string Store = "offline";
    private Sealer _sealer = null!;
    private string _user = null!, _with = null!, _stanza = null!, _sealed = null!;

    [GlobalSetup]
    public void Setup()
    {
        _sealer = new Sealer(new KeyRing(new MasterKey(RandomNumberGenerator.GetBytes(32))), RandomNumberGenerator.GetBytes(32));
        _user = _sealer.Hash("alice");
        _with = _sealer.Hash(_user, "bob@example.org");
        _stanza = "<message xmlns='jabber:client' from='bob@example.org/phone' to='alice@example.org' type='chat' id='a1b2c3d4e5f6'>"
            + "<body>Are we still on for dinner tonight? I booked the table for eight, near the window as you asked.</body>"
            + "<request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
        _sealed = Seal();
    }

    [Benchmark]
    public string Seal() => _sealer.Seal(RecordShape.Archive, Store, _user, _with, "bob@example.org", _stanza);

    [Benchmark]
    public string Open() => _sealer.Open(RecordShape.Archive, Store, _user, _with, _sealed, withName: true).Value;

    [Benchmark]
    public string Hash() => _sealer.Hash(_user, "bob@example.org");
}
