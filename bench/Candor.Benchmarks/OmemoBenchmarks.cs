using BenchmarkDotNet.Attributes;
using Candor.Client.Omemo;

namespace Candor.Benchmarks;

/// <summary>
/// The cost of urn:xmpp:omemo:2 per message (docs/PERFORMANCE.md, "OMEMO"): sealing the payload once plus one Double
/// Ratchet encryption of its key per recipient device, and the receiving side's decryption. No network, no state
/// file: the cryptography alone. PingPong alternates direction, so every message also turns the DH ratchet (two
/// X25519 operations and two HKDFs more), as in a conversation.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
public class OmemoBenchmarks
{
    private RatchetSession[] _senders = null!;
    private RatchetSession[] _receivers = null!;
    private byte[] _plaintext = null!;

    [Params(1, 3)]
    public int Devices { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _plaintext = System.Text.Encoding.UTF8.GetBytes("<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>"
            + "Are we still on for dinner tonight? I booked the table for eight.</body></content><rpad>abcdefgh</rpad>"
            + "<from jid='alice@example.org'/></envelope>");
        var alice = OwnDevice.Create();
        _senders = new RatchetSession[Devices];
        _receivers = new RatchetSession[Devices];
        for (var i = 0; i < Devices; i++)
        {
            var bob = OwnDevice.Create();
            var a = RatchetSession.Initiate(alice, bob.Bundle());
            var (kex, _) = a.Encrypt(new byte[48]);
            var (header, message) = KeyExchange.Unwrap(kex, legacy: false);
            var b = RatchetSession.Accept(bob, header, RatchetSession.RatchetPublicOf(message, legacy: false), legacy: false);
            b.Decrypt(message);
            a.Decrypt(b.Encrypt(new byte[48]).Data);
            (_senders[i], _receivers[i]) = (a, b);
        }
    }

    /// <summary>Alice encrypts one message for all devices; every device decrypts it.</summary>
    [Benchmark]
    public int OneWay()
    {
        var (ciphertext, key) = OmemoCrypto.SealPayload(_plaintext);
        var total = 0;
        for (var i = 0; i < Devices; i++)
        {
            var keyMaterial = _receivers[i].Decrypt(_senders[i].Encrypt(key).Data);
            total += OmemoCrypto.OpenPayload(keyMaterial, ciphertext).Length;
        }
        return total;
    }

    /// <summary>A message each way per device, so both ratchets turn.</summary>
    [Benchmark]
    public int PingPong()
    {
        var total = 0;
        for (var i = 0; i < Devices; i++)
        {
            var (c1, k1) = OmemoCrypto.SealPayload(_plaintext);
            total += OmemoCrypto.OpenPayload(_receivers[i].Decrypt(_senders[i].Encrypt(k1).Data), c1).Length;
            var (c2, k2) = OmemoCrypto.SealPayload(_plaintext);
            total += OmemoCrypto.OpenPayload(_senders[i].Decrypt(_receivers[i].Encrypt(k2).Data), c2).Length;
        }
        return total;
    }
}
