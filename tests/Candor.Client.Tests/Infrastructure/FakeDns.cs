using System.Buffers.Binary;
using System.Collections.Concurrent;
using Candor.Xmpp;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>A DNS server on loopback UDP that answers SRV queries from a table (NXDOMAIN otherwise).</summary>
public sealed class FakeDns : IAsyncDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<(string Name, SrvRecord Record)> _records;
    private Task _loop = Task.CompletedTask;

    private FakeDns((string, SrvRecord)[] records) => _records = new(records);

    /// <summary>Answers <paramref name="name"/> with <paramref name="record"/> too, from now on.</summary>
    public void Add(string name, SrvRecord record) => _records.Enqueue((name, record));

    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;
    public ConcurrentQueue<string> Queries { get; } = new();

    public static FakeDns Start(params (string Name, SrvRecord Record)[] records)
    {
        var dns = new FakeDns(records);
        dns._socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        dns._loop = dns.RunAsync();
        return dns;
    }

    private async Task RunAsync()
    {
        var buffer = new byte[512];
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            var query = buffer.AsSpan(0, received.ReceivedBytes);
            var (name, questionEnd) = ReadQuestion(query);
            Queries.Enqueue(name);
            var answers = _records.Where(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase)).Select(r => r.Record).ToList();
            var response = new List<byte>(query[..questionEnd].ToArray());
            BinaryPrimitives.WriteUInt16BigEndian(Span(response, 2), (ushort)(answers.Count > 0 ? 0x8180 : 0x8183));
            BinaryPrimitives.WriteUInt16BigEndian(Span(response, 6), (ushort)answers.Count);
            // No authority or additional section (the query's EDNS record is not echoed).
            BinaryPrimitives.WriteUInt32BigEndian(Span(response, 8), 0);
            foreach (var record in answers)
            {
                response.AddRange(new byte[] { 0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60 });
                var target = Encode(record.Target);
                var data = new byte[6];
                BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)record.Priority);
                BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(2), (ushort)record.Weight);
                BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4), (ushort)record.Port);
                var length = new byte[2];
                BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)(data.Length + target.Length));
                response.AddRange(length);
                response.AddRange(data);
                response.AddRange(target);
            }
            await _socket.SendToAsync(response.ToArray(), SocketFlags.None, received.RemoteEndPoint);
        }
    }

    private static Span<byte> Span(List<byte> list, int offset) => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list)[offset..];

    private static (string Name, int End) ReadQuestion(ReadOnlySpan<byte> query)
    {
        var labels = new List<string>();
        var pos = 12;
        while (query[pos] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(query.Slice(pos + 1, query[pos])));
            pos += query[pos] + 1;
        }
        return (string.Join('.', labels), pos + 5);
    }

    private static byte[] Encode(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }
        bytes.Add(0);
        return bytes.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _socket.Dispose();
        await _loop;
    }
}
