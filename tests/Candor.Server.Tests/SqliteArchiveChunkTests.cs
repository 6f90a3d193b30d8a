using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Candor.Server.Storage;
using static Candor.Server.Storage.SqliteArchiveChunk;

namespace Candor.Server.Tests;

/// <summary>The SQLite archive's packed rows: every field comes back exactly as given, in fewer bytes than its text.</summary>
public sealed class SqliteArchiveChunkTests
{
    private const string Uuid = "01a25109-d36a-72c2-bd2b-fee5d96f1d67";
    private const string Hash = "4JoVwMrEJR2Q08GM6fls7A";

    public static TheoryData<string> Values => new()
    {
        Uuid,
        Uuid.ToUpperInvariant(),                          // a UUID, but not in the form it would come back as
        "{" + Uuid + "}",
        Hash,
        Hash + "A",                                       // 23 characters: no base64url text of whole bytes
        Convert.ToBase64String(Encoding.UTF8.GetBytes("sealed record bytes, padded")),
        "QR==",                                           // decodes, but is not the canonical text of its byte
        "QQ= =",
        "abc",                                            // plain text that is also base64url of two bytes
        "alice@example.org/phone",
        "",
        "caf\u00e9 \ud83d\ude00 <body>&amp;</body>",
        new string('x', 5000),
        Convert.ToBase64String(new byte[3000]),
    };

    [Theory]
    [MemberData(nameof(Values))]
    public void Every_field_comes_back_exactly_as_given(string value)
    {
        var item = new Item(7, 1_765_000_000_123, value, value, value, value, value, value);
        var row = Encode([item]);
        Assert.Equal(item, Assert.Single(Decode(row)));
    }

    [Fact]
    public void Items_keep_their_index_time_and_null_fields_in_order()
    {
        Item[] items =
        [
            new(0, 1_765_000_000_500, Uuid, Hash, null, "sealed", null, null),
            new(1, 1_765_000_000_100, "late", Hash, Hash, "", "body-1", "Ym9keQ=="),
            new(ushort.MaxValue, long.MaxValue / 2, "far", "x", null, "y", null, null),
            new(3, 0, "epoch", "x", null, "y", null, null),
        ];
        Assert.Equal(items, Decode(Encode(items)));
        Assert.Empty(Decode(Encode([])));
    }

    [Fact]
    public void Ids_hashes_and_sealed_records_are_stored_as_their_bytes()
    {
        var (buffer, record) = RowWithSealedBody(200);
        var row = buffer.WrittenSpan.ToArray();

        // The record, the UUID's 16 bytes and the hash's 16 bytes; none of their text.
        Assert.True(row.AsSpan().IndexOf(record) > 0);
        Assert.True(row.AsSpan().IndexOf(Guid.Parse(Uuid).ToByteArray(bigEndian: true)) > 0);
        Assert.True(row.AsSpan().IndexOf(Convert.FromBase64String(Hash.Replace('-', '+').Replace('_', '/') + "==")) > 0);
        Assert.True(row.AsSpan().IndexOf("d36a"u8) < 0);
        Assert.True(row.AsSpan().IndexOf(Encoding.ASCII.GetBytes(Hash)) < 0);
        // Two UUIDs, three hashes, the record, the time and the tags: 9 + 2 + 2 × 17 + 3 × 18 + 203.
        Assert.Equal(302, row.Length);
        var item = Assert.Single(Decode(row));
        Assert.Equal((Uuid, Hash, Uuid, Convert.ToBase64String(record)), (item.Key, item.Value, item.BodyKey, item.BodyValue));
        Assert.Equal(1_765_000_000_040, item.At);
    }

    /// <summary>A row begun with one item as the archive writes it: a UUID key and body key, hashes, and a sealed body of random bytes.</summary>
    private static (ArrayBufferWriter<byte> Row, byte[] Record) RowWithSealedBody(int recordLength)
    {
        var record = new byte[recordLength];
        Random.Shared.NextBytes(record);
        var buffer = new ArrayBufferWriter<byte>();
        Begin(buffer, 1_765_000_000_000);
        Add(buffer, 0, 1_765_000_000_040, Uuid, Hash, Hash, Hash, Uuid, bodyValue: null, bodyRecord: record);
        return (buffer, record);
    }

    [Fact]
    public void Rows_of_the_first_form_are_still_read()
    {
        var row = new ArrayBufferWriter<byte>();
        row.Write((ReadOnlySpan<byte>)[1]);
        var head = new byte[10];
        BinaryPrimitives.WriteUInt16LittleEndian(head, 3);
        BinaryPrimitives.WriteInt64LittleEndian(head.AsSpan(2), 1_765_000_000_777);
        row.Write(head);
        foreach (var field in new[] { "key-1", "with", null, "value", "body-1" })
        {
            var bytes = field is null ? [] : Encoding.UTF8.GetBytes(field);
            var length = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, field is null ? -1 : bytes.Length);
            row.Write(length);
            row.Write(bytes);
        }
        var record = new byte[] { 1, 2, 3, 4, 5 };
        var recordLength = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(recordLength, -2 - record.Length);
        row.Write(recordLength);
        row.Write(record);

        var item = Assert.Single(Decode(row.WrittenSpan));
        Assert.Equal(new Item(3, 1_765_000_000_777, "key-1", "with", null, "value", "body-1", Convert.ToBase64String(record)), item);
    }

    [Fact]
    public void A_damaged_row_is_reported_not_misread()
    {
        var row = Encode([new Item(0, 1_765_000_000_000, Uuid, Hash, null, "sealed", null, null)]);
        Assert.Throws<InvalidDataException>(() => Decode([]));
        Assert.Throws<InvalidDataException>(() => Decode([9, .. row.AsSpan(1)]));
        for (var length = 1; length < row.Length; length++)
            if (length != 9) Assert.Throws<InvalidDataException>(() => Decode(row.AsSpan(0, length)));
        var unknownTag = row.ToArray();
        unknownTag[11] = 0x7F;
        Assert.Throws<InvalidDataException>(() => Decode(unknownTag));
        byte[] endless = [2, 0, 0, 0, 0, 0, 0, 0, 0, .. Enumerable.Repeat((byte)0xFF, 12)];
        Assert.Throws<InvalidDataException>(() => Decode(endless));
    }

    [Fact]
    public void Altered_bytes_are_read_or_reported_as_damaged_never_another_failure()
    {
        var (buffer, record) = RowWithSealedBody(120);
        Add(buffer, 1, 1_765_000_000_020, "key", "with", null, Convert.ToBase64String(record), null, null);
        var row = buffer.WrittenSpan.ToArray();
        var random = new Random(13);
        for (var trial = 0; trial < 20_000; trial++)
        {
            var altered = row.ToArray();
            for (var changes = random.Next(1, 4); changes > 0; changes--) altered[random.Next(altered.Length)] = (byte)random.Next(256);
            var length = random.Next(4) == 0 ? random.Next(altered.Length) : altered.Length;
            try
            {
                Decode(altered.AsSpan(0, length));
            }
            catch (InvalidDataException)
            {
            }
        }
    }
}
