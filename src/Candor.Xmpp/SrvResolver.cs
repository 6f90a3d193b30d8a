using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Candor.Xmpp;

/// <summary>One SRV target (RFC 2782).</summary>
public sealed record SrvRecord(string Target, int Port, int Priority, int Weight);

/// <summary>
/// A minimal DNS client for SRV records: one query over UDP to the resolvers of /etc/resolv.conf (or the given
/// ones), no recursion of its own, no TCP fallback. A truncated answer is used as far as it goes. Any failure
/// (no resolver, timeout, NXDOMAIN, garbage) yields an empty list, so callers fall back to the plain domain.
/// </summary>
public static class SrvResolver
{
    private const ushort TypeSrv = 33;
    private const ushort ClassIn = 1;

    public static IReadOnlyList<IPEndPoint> SystemResolvers(string path = "/etc/resolv.conf")
    {
        var servers = new List<IPEndPoint>();
        try
        {
            foreach (var line in File.ReadLines(path))
            {
                var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && parts[0] == "nameserver" && IPAddress.TryParse(parts[1].Split('%')[0], out var address))
                    servers.Add(new IPEndPoint(address, 53));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return servers;
    }

    /// <summary>Queries <paramref name="name"/> (e.g. <c>_xmpp-client._tcp.example.org</c>); records sorted by priority, then weight descending.</summary>
    public static async Task<IReadOnlyList<SrvRecord>> QueryAsync(string name, IReadOnlyList<IPEndPoint>? servers,
        TimeSpan timeout, CancellationToken cancellation)
    {
        servers ??= SystemResolvers();
        foreach (var server in servers)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            cts.CancelAfter(timeout);
            try
            {
                using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                var id = (ushort)RandomNumberGenerator.GetInt32(ushort.MaxValue + 1);
                var query = BuildQuery(id, name);
                await socket.SendToAsync(query, SocketFlags.None, server, cts.Token);
                var buffer = new byte[4096];
                while (true)
                {
                    var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, server, cts.Token);
                    var answer = Parse(buffer.AsSpan(0, received.ReceivedBytes), id, out var authoritative);
                    if (answer is null) continue; // not our answer
                    if (answer.Count > 0 || authoritative) return Sort(answer);
                    break;
                }
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
            }
            catch (SocketException)
            {
            }
        }
        return [];
    }

    private static IReadOnlyList<SrvRecord> Sort(List<SrvRecord> records) =>
        records.OrderBy(r => r.Priority).ThenByDescending(r => r.Weight).ToList();

    internal static byte[] BuildQuery(ushort id, string name)
    {
        var packet = new List<byte>(64);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], 0x0100); // standard query, recursion desired
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], 1);      // one question
        packet.AddRange(header.ToArray());
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            var bytes = Encoding.ASCII.GetBytes(label);
            if (bytes.Length is 0 or > 63) throw new ArgumentException($"invalid DNS name {name}", nameof(name));
            packet.Add((byte)bytes.Length);
            packet.AddRange(bytes);
        }
        packet.AddRange(new byte[] { 0, 0, (byte)TypeSrv, 0, (byte)ClassIn });
        return packet.ToArray();
    }

    /// <summary>The SRV records of a response to query <paramref name="id"/>; null if it is not a response to it.
    /// <paramref name="final"/> is true for an answer that settles the question (NOERROR or NXDOMAIN).</summary>
    internal static List<SrvRecord>? Parse(ReadOnlySpan<byte> message, ushort id, out bool final)
    {
        final = false;
        if (message.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(message) != id) return null;
        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        if ((flags & 0x8000) == 0) return null;
        var rcode = flags & 0xF;
        final = rcode is 0 or 3;
        var records = new List<SrvRecord>();
        if (rcode != 0) return records;
        var questions = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var answers = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var pos = 12;
        try
        {
            for (var i = 0; i < questions; i++)
            {
                ReadName(message, ref pos);
                pos += 4;
            }
            for (var i = 0; i < answers; i++)
            {
                ReadName(message, ref pos);
                var type = BinaryPrimitives.ReadUInt16BigEndian(message[pos..]);
                var length = BinaryPrimitives.ReadUInt16BigEndian(message[(pos + 8)..]);
                pos += 10;
                var end = pos + length;
                if (end > message.Length) break;
                if (type == TypeSrv && length >= 7)
                {
                    var priority = BinaryPrimitives.ReadUInt16BigEndian(message[pos..]);
                    var weight = BinaryPrimitives.ReadUInt16BigEndian(message[(pos + 2)..]);
                    var port = BinaryPrimitives.ReadUInt16BigEndian(message[(pos + 4)..]);
                    var targetPos = pos + 6;
                    var target = ReadName(message, ref targetPos);
                    records.Add(new SrvRecord(target, port, priority, weight));
                }
                pos = end;
            }
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or FormatException)
        {
            // A truncated or malformed answer: keep what was read.
        }
        return records;
    }

    /// <summary>Reads a possibly compressed name (RFC 1035 §4.1.4). "." for the root.</summary>
    private static string ReadName(ReadOnlySpan<byte> message, ref int pos)
    {
        var name = new StringBuilder();
        var cursor = pos;
        var jumped = false;
        for (var hops = 0; ; hops++)
        {
            if (hops > 128) throw new FormatException("DNS name loop");
            var length = message[cursor];
            if (length == 0)
            {
                if (!jumped) pos = cursor + 1;
                break;
            }
            if ((length & 0xC0) == 0xC0)
            {
                var pointer = ((length & 0x3F) << 8) | message[cursor + 1];
                if (!jumped) pos = cursor + 2;
                jumped = true;
                cursor = pointer;
                continue;
            }
            if (name.Length > 0) name.Append('.');
            name.Append(Encoding.ASCII.GetString(message.Slice(cursor + 1, length)));
            cursor += length + 1;
        }
        return name.Length == 0 ? "." : name.ToString();
    }
}
