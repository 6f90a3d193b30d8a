using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Candor.Server.Storage;

/// <summary>
/// The SQLite archive's write-optimised form: the items one batch appends for one account, packed into one row of
/// the archive table (its <c>items</c> column) instead of a row each. A row per item cost a B-tree insert into the
/// table and each of its two indexes, and a row for the shared body, per entry: with archiving on, that was most of
/// the writer's CPU (docs/PERFORMANCE.md, "Archive writes, seventh pass"). Queries read an account's rows in id order
/// as before and filter the packed items as they go; items keep their values exactly as the layer above stored them
/// (sealed), each with its own copy of a shared body.
/// An item's id is its row's id shifted left by <see cref="IndexBits"/> plus its index in the row, which stays the
/// same when other items of the row are taken or expire; a row of one item (<see cref="IArchiveStore.AppendAsync"/>,
/// and rows written before packing) is index 0.
/// </summary>
internal static class SqliteArchiveChunk
{
    public const int IndexBits = 16;
    /// <summary>Items per row at most; a longer run of one account's items in a batch takes several rows.</summary>
    public const int MaxItems = 4096;
    private const byte Version = 1;

    public sealed record Item(int Index, long At, string Key, string With, string? WithFull, string Value, string? BodyKey, string? BodyValue);

    public static long ItemId(long row, int index) => (row << IndexBits) | (uint)index;
    public static long RowOf(long itemId) => itemId >> IndexBits;

    public static byte[] Encode(IReadOnlyList<Item> items)
    {
        var buffer = new ArrayBufferWriter<byte>(256 * items.Count + 8);
        Begin(buffer);
        foreach (var item in items) Add(buffer, item.Index, item.At, item.Key, item.With, item.WithFull, item.Value, item.BodyKey, item.BodyValue);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Starts a row in <paramref name="buffer"/> (cleared first); <see cref="Add"/> appends its items.</summary>
    public static void Begin(ArrayBufferWriter<byte> buffer)
    {
        buffer.ResetWrittenCount();
        buffer.GetSpan(1)[0] = Version;
        buffer.Advance(1);
    }

    /// <summary>
    /// Appends an item; a shared body sealed as bytes (<paramref name="bodyRecord"/>, instead of
    /// <paramref name="bodyValue"/>) is stored as they are and read back as their base64 text, the form the layer above
    /// gave and takes everywhere else: a third fewer bytes than the text.
    /// </summary>
    public static void Add(ArrayBufferWriter<byte> buffer, int index, long at, string key, string with, string? withFull, string value, string? bodyKey, string? bodyValue, byte[]? bodyRecord = null)
    {
        var head = buffer.GetSpan(10);
        BinaryPrimitives.WriteUInt16LittleEndian(head, (ushort)index);
        BinaryPrimitives.WriteInt64LittleEndian(head[2..], at);
        buffer.Advance(10);
        Put(buffer, key);
        Put(buffer, with);
        Put(buffer, withFull);
        Put(buffer, value);
        Put(buffer, bodyKey);
        if (bodyRecord is null) Put(buffer, bodyValue);
        else PutBase64(buffer, bodyRecord);
    }

    /// <summary>The row's items in index order; a row that is not one this class wrote is reported as damaged.</summary>
    public static List<Item> Decode(ReadOnlySpan<byte> row)
    {
        if (row.Length == 0 || row[0] != Version) throw Damaged();
        var items = new List<Item>();
        var at = 1;
        while (at < row.Length)
        {
            if (row.Length - at < 10) throw Damaged();
            var index = BinaryPrimitives.ReadUInt16LittleEndian(row[at..]);
            var time = BinaryPrimitives.ReadInt64LittleEndian(row[(at + 2)..]);
            at += 10;
            var key = Take(row, ref at) ?? throw Damaged();
            var with = Take(row, ref at) ?? throw Damaged();
            var withFull = Take(row, ref at);
            var value = Take(row, ref at) ?? throw Damaged();
            var bodyKey = Take(row, ref at);
            var bodyValue = Take(row, ref at);
            items.Add(new Item(index, time, key, with, withFull, value, bodyKey, bodyValue));
        }
        return items;
    }

    // A length of -1 is null.
    private static void Put(ArrayBufferWriter<byte> buffer, string? text)
    {
        var span = buffer.GetSpan(4 + (text is null ? 0 : Encoding.UTF8.GetMaxByteCount(text.Length)));
        var length = text is null ? -1 : Encoding.UTF8.GetBytes(text, span[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(span, length);
        buffer.Advance(4 + Math.Max(length, 0));
    }

    // Bytes that stand for their base64 text: a length of -2 - n, then the n bytes.
    private static void PutBase64(ArrayBufferWriter<byte> buffer, byte[] bytes)
    {
        var span = buffer.GetSpan(4 + bytes.Length);
        BinaryPrimitives.WriteInt32LittleEndian(span, -2 - bytes.Length);
        bytes.CopyTo(span[4..]);
        buffer.Advance(4 + bytes.Length);
    }

    private static string? Take(ReadOnlySpan<byte> row, ref int at)
    {
        if (row.Length - at < 4) throw Damaged();
        var length = BinaryPrimitives.ReadInt32LittleEndian(row[at..]);
        at += 4;
        if (length == -1) return null;
        var base64 = length < -1;
        if (base64) length = -2 - length;
        if (length < 0 || length > row.Length - at) throw Damaged();
        var field = row.Slice(at, length);
        at += length;
        return base64 ? Convert.ToBase64String(field) : Encoding.UTF8.GetString(field);
    }

    private static InvalidDataException Damaged() => new("an archive row's packed items are damaged (the database was altered outside Candor)");
}
