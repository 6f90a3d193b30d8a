using BenchmarkDotNet.Attributes;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Benchmarks;

/// <summary>JID preparation (RFC 7622) and a full SCRAM-SHA-256 exchange at the stored iteration count.</summary>
[MemoryDiagnoser]
public class AddressAndAuthBenchmarks
{
    private readonly ScramCredential _credential = ScramCredential.Create(ScramAlgorithm.Sha256, "pencil", 4096);

    [Benchmark]
    public Jid PrepareAsciiJid() => Jid.Parse("alice@example.org/phone");

    [Benchmark]
    public Jid PrepareUnicodeJid() => Jid.Parse("Ünïcödé@München.example/Téléphone");

    [Benchmark]
    public bool ScramSha256Exchange()
    {
        var client = new ScramClient(ScramAlgorithm.Sha256, "user", "pencil");
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);
        server.ReadClientFirst(client.CreateClientFirst());
        var final = client.CreateClientFinal(server.CreateServerFirst(_credential));
        return server.VerifyClientFinal(final, out var serverFinal) && client.VerifyServerFinal(serverFinal);
    }
}
