using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
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
    /// <summary>Rows written before the compact form: fixed-size numbers, every field as text or sealed bytes.</summary>
    private const byte TextVersion = 1;
    private const byte Version = 2;

    /// <summary>How a field is stored in a row of <see cref="Version"/> 2: the tag byte before it.</summary>
    private enum Field : byte
    {
        Null = 0,
        /// <summary>A length and the UTF-8 text.</summary>
        Text = 1,
        /// <summary>A length and the bytes of canonical base64 text (a sealed record), read back as that text.</summary>
        Base64 = 2,
        /// <summary>A length and the bytes of canonical unpadded base64url text (a keyed hash or binding).</summary>
        Base64Url = 3,
        /// <summary>The 16 bytes of a UUID whose text is the lowercase hyphenated form (a stanza-id, a body key).</summary>
        Uuid = 4,
    }

    public sealed record Item(int Index, long At, string Key, string With, string? WithFull, string Value, string? BodyKey, string? BodyValue);

    public static long ItemId(long row, int index) => (row << IndexBits) | (uint)index;
    public static long RowOf(long itemId) => itemId >> IndexBits;

    public static byte[] Encode(IReadOnlyList<Item> items)
    {
        var buffer = new ArrayBufferWriter<byte>(256 * items.Count + 16);
        Begin(buffer, items.Count == 0 ? 0 : items[0].At);
        foreach (var item in items) Add(buffer, item.Index, item.At, item.Key, item.With, item.WithFull, item.Value, item.BodyKey, item.BodyValue);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Starts a row in <paramref name="buffer"/> (cleared first) whose items' times are kept as differences from
    /// <paramref name="at"/>; <see cref="Add"/> appends its items.
    /// </summary>
    public static void Begin(ArrayBufferWriter<byte> buffer, long at)
    {
        buffer.ResetWrittenCount();
        var head = buffer.GetSpan(9);
        head[0] = Version;
        BinaryPrimitives.WriteInt64LittleEndian(head[1..], at);
        buffer.Advance(9);
    }

    /// <summary>
    /// Appends an item. Each field is stored in the most compact form its text round-trips through exactly (the ids,
    /// hashes and sealed records the layer above gives are text forms of bytes: a third to a half fewer bytes as
    /// bytes); a shared body sealed as bytes (<paramref name="bodyRecord"/>, instead of <paramref name="bodyValue"/>)
    /// is stored as they are and read back as their base64 text, the form the layer above takes everywhere else.
    /// </summary>
    public static void Add(ArrayBufferWriter<byte> buffer, int index, long at, string key, string with, string? withFull, string value, string? bodyKey, string? bodyValue, byte[]? bodyRecord = null)
    {
        var baseAt = BinaryPrimitives.ReadInt64LittleEndian(buffer.WrittenSpan[1..]);
        PutNumber(buffer, (uint)index);
        var delta = at - baseAt;
        PutNumber(buffer, (ulong)((delta << 1) ^ (delta >> 63)));
        Put(buffer, key);
        Put(buffer, with);
        Put(buffer, withFull);
        Put(buffer, value);
        Put(buffer, bodyKey);
        if (bodyRecord is null) Put(buffer, bodyValue);
        else PutBytes(buffer, Field.Base64, bodyRecord);
    }

    /// <summary>The row's items in index order; a row that is not one this class wrote is reported as damaged.</summary>
    public static List<Item> Decode(ReadOnlySpan<byte> row)
    {
        if (row.Length == 0) throw Damaged();
        if (row[0] == TextVersion) return DecodeText(row);
        if (row[0] != Version || row.Length < 9) throw Damaged();
        var baseAt = BinaryPrimitives.ReadInt64LittleEndian(row[1..]);
        var items = new List<Item>();
        var at = 9;
        while (at < row.Length)
        {
            var index = TakeNumber(row, ref at);
            var delta = TakeNumber(row, ref at);
            if (index > ushort.MaxValue) throw Damaged();
            items.Add(TakeFields(row, ref at, (int)index, baseAt + ((long)(delta >> 1) ^ -(long)(delta & 1)), Take));
        }
        return items;
    }

    private delegate string? FieldReader(ReadOnlySpan<byte> row, ref int at);

    private static Item TakeFields(ReadOnlySpan<byte> row, ref int at, int index, long time, FieldReader take)
    {
        var key = take(row, ref at) ?? throw Damaged();
        var with = take(row, ref at) ?? throw Damaged();
        var withFull = take(row, ref at);
        var value = take(row, ref at) ?? throw Damaged();
        var bodyKey = take(row, ref at);
        return new Item(index, time, key, with, withFull, value, bodyKey, take(row, ref at));
    }

    private static void Put(ArrayBufferWriter<byte> buffer, string? text)
    {
        if (text is null)
        {
            PutTag(buffer, Field.Null);
            return;
        }
        if (text.Length == 36 && Guid.TryParseExact(text, "D", out var uuid) && IsFormattedAs(uuid, text))
        {
            var span = buffer.GetSpan(17);
            span[0] = (byte)Field.Uuid;
            uuid.TryWriteBytes(span[1..], bigEndian: true, out _);
            buffer.Advance(17);
            return;
        }
        if (text.Length > 0 && PutAsBytes(buffer, text)) return;
        var length = Encoding.UTF8.GetByteCount(text);
        PutTag(buffer, Field.Text);
        PutNumber(buffer, (uint)length);
        Encoding.UTF8.GetBytes(text, buffer.GetSpan(length));
        buffer.Advance(length);
    }

    private static bool IsFormattedAs(Guid uuid, string text)
    {
        Span<char> formatted = stackalloc char[36];
        return uuid.TryFormat(formatted, out _, "D") && formatted.SequenceEqual(text);
    }

    /// <summary>Stores <paramref name="text"/> as the bytes it is the base64 or base64url text of, if it is exactly that.</summary>
    private static bool PutAsBytes(ArrayBufferWriter<byte> buffer, string text)
    {
        const int StackLimit = 256;
        byte[]? rentedBytes = null;
        char[]? rentedChars = null;
        var bytes = text.Length <= StackLimit ? stackalloc byte[StackLimit] : rentedBytes = ArrayPool<byte>.Shared.Rent(text.Length);
        var encoded = text.Length <= StackLimit ? stackalloc char[StackLimit] : rentedChars = ArrayPool<char>.Shared.Rent(text.Length);
        try
        {
            var url = text.Length % 4 != 0;
            int length;
            if (url ? Base64Url.DecodeFromChars(text, bytes, out _, out length) != OperationStatus.Done : !Convert.TryFromBase64String(text, bytes, out length))
                return false;
            if (!(url ? Base64Url.TryEncodeToChars(bytes[..length], encoded, out var written) : Convert.TryToBase64Chars(bytes[..length], encoded, out written))
                || !encoded[..written].SequenceEqual(text))
                return false;
            PutBytes(buffer, url ? Field.Base64Url : Field.Base64, bytes[..length]);
            return true;
        }
        finally
        {
            if (rentedBytes is not null) ArrayPool<byte>.Shared.Return(rentedBytes);
            if (rentedChars is not null) ArrayPool<char>.Shared.Return(rentedChars);
        }
    }

    private static void PutBytes(ArrayBufferWriter<byte> buffer, Field field, ReadOnlySpan<byte> bytes)
    {
        PutTag(buffer, field);
        PutNumber(buffer, (uint)bytes.Length);
        buffer.Write(bytes);
    }

    private static void PutTag(ArrayBufferWriter<byte> buffer, Field field)
    {
        buffer.GetSpan(1)[0] = (byte)field;
        buffer.Advance(1);
    }

    // Seven bits per byte, low first; the high bit says another byte follows.
    private static void PutNumber(ArrayBufferWriter<byte> buffer, ulong number)
    {
        var span = buffer.GetSpan(10);
        var written = 0;
        for (; number >= 0x80; number >>= 7) span[written++] = (byte)(number | 0x80);
        span[written++] = (byte)number;
        buffer.Advance(written);
    }

    private static ulong TakeNumber(ReadOnlySpan<byte> row, ref int at)
    {
        ulong number = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (at >= row.Length) throw Damaged();
            var b = row[at++];
            number |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return number;
        }
        throw Damaged();
    }

    private static string? Take(ReadOnlySpan<byte> row, ref int at)
    {
        if (at >= row.Length) throw Damaged();
        var field = (Field)row[at++];
        if (field == Field.Null) return null;
        if (field == Field.Uuid)
        {
            if (row.Length - at < 16) throw Damaged();
            var uuid = new Guid(row.Slice(at, 16), bigEndian: true);
            at += 16;
            return uuid.ToString("D");
        }
        var length = TakeNumber(row, ref at);
        if (length > (ulong)(row.Length - at)) throw Damaged();
        var bytes = row.Slice(at, (int)length);
        at += (int)length;
        return field switch
        {
            Field.Text => Encoding.UTF8.GetString(bytes),
            Field.Base64 => Convert.ToBase64String(bytes),
            Field.Base64Url => Base64Url.EncodeToString(bytes),
            _ => throw Damaged(),
        };
    }

    /// <summary>A row of the first form: a 2-byte index and an 8-byte time per item, fields as a 4-byte length and UTF-8.</summary>
    private static List<Item> DecodeText(ReadOnlySpan<byte> row)
    {
        var items = new List<Item>();
        var at = 1;
        while (at < row.Length)
        {
            if (row.Length - at < 10) throw Damaged();
            var index = BinaryPrimitives.ReadUInt16LittleEndian(row[at..]);
            var time = BinaryPrimitives.ReadInt64LittleEndian(row[(at + 2)..]);
            at += 10;
            items.Add(TakeFields(row, ref at, index, time, TakeText));
        }
        return items;
    }

    // A length of -1 is null; -2 - n is n bytes that stand for their base64 text.
    private static string? TakeText(ReadOnlySpan<byte> row, ref int at)
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
