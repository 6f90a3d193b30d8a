using BenchmarkDotNet.Attributes;
using Candor.Client.Omemo;

namespace Candor.Benchmarks;

/// <summary>
/// The cost of OMEMO per message (docs/PERFORMANCE.md, "OMEMO"), urn:xmpp:omemo:2 or with <see cref="LegacyOmemo"/> the
/// legacy eu.siacs.conversations.axolotl (AES-128-GCM payload, libsignal framing): sealing the payload once plus one Double
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

    [Params(false, true)]
    public bool LegacyOmemo { get; set; }

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
            var bundle = !LegacyOmemo ? bob.Bundle() : bob.Bundle() with
            {
                SignedPreKeySignature = Legacy.SplitSignature(Legacy.Sign(bob.IdentitySeed, bob.IdentityPublic, bob.SignedPreKey.Public)).Signature,
                Legacy = true,
            };
            var a = RatchetSession.Initiate(alice, bundle);
            var (kex, _) = a.Encrypt(new byte[48]);
            var (header, message) = KeyExchange.Unwrap(kex, LegacyOmemo);
            var b = RatchetSession.Accept(bob, header, RatchetSession.RatchetPublicOf(message, LegacyOmemo), LegacyOmemo);
            b.Decrypt(message);
            a.Decrypt(b.Encrypt(new byte[48]).Data);
            (_senders[i], _receivers[i]) = (a, b);
        }
    }

    private (byte[] Ciphertext, byte[] Iv, byte[] Key) Seal()
    {
        if (LegacyOmemo) return Legacy.SealPayload(_plaintext);
        var (ciphertext, key) = OmemoCrypto.SealPayload(_plaintext);
        return (ciphertext, [], key);
    }

    private int Open(byte[] key, (byte[] Ciphertext, byte[] Iv, byte[] Key) sealedPayload) =>
        (LegacyOmemo ? Legacy.OpenPayload(key, sealedPayload.Iv, sealedPayload.Ciphertext) : OmemoCrypto.OpenPayload(key, sealedPayload.Ciphertext)).Length;

    /// <summary>Alice encrypts one message for all devices; every device decrypts it.</summary>
    [Benchmark]
    public int OneWay()
    {
        var payload = Seal();
        var total = 0;
        for (var i = 0; i < Devices; i++) total += Open(_receivers[i].Decrypt(_senders[i].Encrypt(payload.Key).Data), payload);
        return total;
    }

    /// <summary>A message each way per device, so both ratchets turn.</summary>
    [Benchmark]
    public int PingPong()
    {
        var total = 0;
        for (var i = 0; i < Devices; i++)
        {
            var first = Seal();
            total += Open(_receivers[i].Decrypt(_senders[i].Encrypt(first.Key).Data), first);
            var second = Seal();
            total += Open(_senders[i].Decrypt(_receivers[i].Encrypt(second.Key).Data), second);
        }
        return total;
    }
}
