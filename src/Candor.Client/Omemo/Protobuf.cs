namespace Candor.Client.Omemo;

/// <summary>
/// The three protobuf messages of XEP-0384 §3 (OMEMOMessage, OMEMOAuthenticatedMessage, OMEMOKeyExchange): varint
/// and length-delimited fields only, written in field order as proto2 does for required fields.
/// </summary>
internal static class Protobuf
{
    public sealed class Writer
    {
        private readonly MemoryStream _out = new();

        public Writer UInt(int field, uint value)
        {
            Varint((uint)(field << 3));
            Varint(value);
            return this;
        }

        public Writer Bytes(int field, ReadOnlySpan<byte> value)
        {
            Varint((uint)(field << 3 | 2));
            Varint((uint)value.Length);
            _out.Write(value);
            return this;
        }

        private void Varint(ulong value)
        {
            while (value >= 0x80)
            {
                _out.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }
            _out.WriteByte((byte)value);
        }

        public byte[] ToArray() => _out.ToArray();
    }

    /// <summary>Fields by number: varints as ulong, length-delimited as byte[]. Unknown wire types are malformed.</summary>
    public static Dictionary<int, object> Read(byte[] data)
    {
        var fields = new Dictionary<int, object>();
        var i = 0;
        while (i < data.Length)
        {
            var key = ReadVarint(data, ref i);
            var field = (int)(key >> 3);
            switch (key & 7)
            {
                case 0:
                    fields[field] = ReadVarint(data, ref i);
                    break;
                case 2:
                    var length = ReadVarint(data, ref i);
                    if (length > (ulong)(data.Length - i)) throw new OmemoException("malformed protobuf: truncated field");
                    fields[field] = data.AsSpan(i, (int)length).ToArray();
                    i += (int)length;
                    break;
                default:
                    throw new OmemoException("malformed protobuf: unexpected wire type");
            }
        }
        return fields;
    }

    private static ulong ReadVarint(byte[] data, ref int i)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (i >= data.Length) throw new OmemoException("malformed protobuf: truncated varint");
            var b = data[i++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new OmemoException("malformed protobuf: varint too long");
    }

    public static byte[] RequiredBytes(Dictionary<int, object> fields, int field) =>
        fields.TryGetValue(field, out var v) && v is byte[] b ? b : throw new OmemoException($"malformed protobuf: field {field} missing");

    public static uint RequiredUInt(Dictionary<int, object> fields, int field) =>
        fields.TryGetValue(field, out var v) && v is ulong u && u <= uint.MaxValue ? (uint)u : throw new OmemoException($"malformed protobuf: field {field} missing");
}
