using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Server.Modules.ExternalServices;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// External Service Discovery (XEP-0215) against Debian's coturn, started here on a free loopback port with the secret
/// Candor is given: a TURN allocation (RFC 8656) with the credentials Candor hands out succeeds; expired or forged ones
/// are refused with 401. The allocation client is a small one below (Allocate, long-term credentials, RFC 8489).
/// </summary>
public sealed class TurnInteropTests(ITestOutputHelper output)
{
    private const string Secret = "candor-turn-test-secret";
    private const string Ns = "urn:xmpp:extdisco:2";

    [Fact]
    public async Task Coturn_allocates_with_the_handed_out_credentials_and_refuses_expired_or_forged_ones()
    {
        var turnserver = Tools.RequireCommand("turnserver", "coturn");
        var port = FreePorts.Take(1)[0];
        var work = Directory.CreateTempSubdirectory("candor-coturn-").FullName;
        await using var coturn = ChildProcess.Start(turnserver,
        [
            "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", $"--listening-port={port}", "--realm=candor.test",
            "--use-auth-secret", $"--static-auth-secret={Secret}", "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout",
            "--simple-log", $"--pidfile={work}/turnserver.pid", $"--db={work}/turndb", "--min-port=49160", "--max-port=49200",
        ]);
        await coturn.WaitForOutputAsync("listener opened on", TimeSpan.FromSeconds(15));
        Assert.False(coturn.HasExited, $"turnserver exited:\n{coturn.Output}");

        await using var server = await CandorServer.StartAsync(output, environment: new Dictionary<string, string?>
        {
            ["CANDOR__TURNHOST"] = "127.0.0.1", ["CANDOR__TURNPORT"] = port.ToString(), ["CANDOR__TURNSECRET"] = Secret,
        });
        await server.AddUserAsync("tina@localhost", "tina-pw");
        await using var client = new XmppClient(new XmppClientOptions
        {
            Jid = Jid.Parse("tina@localhost/call"), Password = "tina-pw", Host = CandorServer.Host, Port = server.C2sPort,
            CertificateFingerprint = server.CertificateFingerprint, AutoReceipts = false,
        });
        await client.ConnectAsync();
        var services = (await client.IqAsync(StoredStanza.Parse($"<iq xmlns='jabber:client' type='get' to='localhost'><services xmlns='{Ns}'/></iq>"))).GetChild("services", Ns)!;
        output.WriteLine(services.ToString());
        Assert.Equal(["stun/udp", "turn/udp", "turn/tcp"], services.Elements.Select(s => $"{s.GetAttribute("type")}/{s.GetAttribute("transport")}"));
        var turn = services.Elements.Single(s => s.GetAttribute("type") == "turn" && s.GetAttribute("transport") == "udp");
        Assert.Null(services.Elements.First().GetAttribute("password"));

        var credentials = (await client.IqAsync(StoredStanza.Parse(
            $"<iq xmlns='jabber:client' type='get' to='localhost'><credentials xmlns='{Ns}'><service host='127.0.0.1' type='turn'/></credentials></iq>"))).GetChild("credentials", Ns)!;
        var fresh = credentials.Elements.First();
        Assert.EndsWith(":tina@localhost", fresh.GetAttribute("username"));

        Assert.Equal(0, await AllocateAsync(port, turn.GetAttribute("username")!, turn.GetAttribute("password")!));
        Assert.Equal(0, await AllocateAsync(port, fresh.GetAttribute("username")!, fresh.GetAttribute("password")!));

        var (expiredUser, expiredPassword) = ExternalServicesModule.Credentials(Secret, "tina@localhost", DateTimeOffset.UtcNow.AddMinutes(-5));
        Assert.Equal(401, await AllocateAsync(port, expiredUser, expiredPassword));
        var (forgedUser, forgedPassword) = ExternalServicesModule.Credentials("not-the-secret", "tina@localhost", DateTimeOffset.UtcNow.AddHours(1));
        Assert.Equal(401, await AllocateAsync(port, forgedUser, forgedPassword));
        Assert.Equal(401, await AllocateAsync(port, $"{DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()}:tina@localhost", turn.GetAttribute("password")!));
        Directory.Delete(work, recursive: true);
    }

    /// <summary>A TURN Allocate over UDP with long-term credentials; 0 on success, else the STUN error code.</summary>
    private static async Task<int> AllocateAsync(int port, string username, string password)
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        udp.Connect(IPAddress.Loopback, port);
        var (type, attributes) = await ExchangeAsync(udp, Message(0x0003, [(0x0019, [17, 0, 0, 0])], null));
        Assert.Equal(0x0113, type);
        Assert.Equal(401, ErrorCode(attributes));
        var realm = attributes[0x0014];
        var nonce = attributes[0x0015];
        var key = MD5.HashData(Encoding.UTF8.GetBytes($"{username}:{Encoding.UTF8.GetString(realm)}:{password}"));
        (type, attributes) = await ExchangeAsync(udp, Message(0x0003,
            [(0x0019, [17, 0, 0, 0]), (0x0006, Encoding.UTF8.GetBytes(username)), (0x0014, realm), (0x0015, nonce)], key));
        return type == 0x0103 ? 0 : ErrorCode(attributes);
    }

    private static int ErrorCode(Dictionary<int, byte[]> attributes) =>
        attributes.TryGetValue(0x0009, out var error) ? error[2] * 100 + error[3] : -1;

    private static async Task<(int Type, Dictionary<int, byte[]> Attributes)> ExchangeAsync(UdpClient udp, byte[] request)
    {
        for (var attempt = 0; ; attempt++)
        {
            await udp.SendAsync(request);
            try
            {
                var response = (await udp.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(2))).Buffer;
                var attributes = new Dictionary<int, byte[]>();
                for (var at = 20; at + 4 <= response.Length;)
                {
                    int attributeType = BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(at)), length = BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(at + 2));
                    attributes[attributeType] = response.AsSpan(at + 4, length).ToArray();
                    at += 4 + (length + 3) / 4 * 4;
                }
                return (BinaryPrimitives.ReadUInt16BigEndian(response), attributes);
            }
            catch (TimeoutException) when (attempt < 3)
            {
            }
        }
    }

    private static byte[] Message(int type, (int Type, byte[] Value)[] attributes, byte[]? integrityKey)
    {
        var body = new MemoryStream();
        Span<byte> header = stackalloc byte[4];
        foreach (var (attributeType, value) in attributes)
        {
            BinaryPrimitives.WriteUInt16BigEndian(header, (ushort)attributeType);
            BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)value.Length);
            body.Write(header);
            body.Write(value);
            body.Write(new byte[(4 - value.Length % 4) % 4]);
        }
        var message = new byte[20 + body.Length + (integrityKey is null ? 0 : 24)];
        BinaryPrimitives.WriteUInt16BigEndian(message, (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), (ushort)(message.Length - 20));
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), 0x2112A442);
        RandomNumberGenerator.Fill(message.AsSpan(8, 12));
        body.ToArray().CopyTo(message, 20);
        if (integrityKey is not null)
        {
            var at = 20 + (int)body.Length;
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at), 0x0008);
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at + 2), 20);
            HMACSHA1.HashData(integrityKey, message.AsSpan(0, at)).CopyTo(message, at + 4);
        }
        return message;
    }
}
