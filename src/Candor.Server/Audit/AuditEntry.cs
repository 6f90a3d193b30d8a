using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using NSec.Cryptography;

namespace Candor.Server.Audit;

/// <summary>
/// One line of the operator log: who (<see cref="Actors"/>) did what to which account, with non-secret details.
/// Its leaf in the Merkle tree is the SHA-256 (RFC 9162 leaf prefix) of <see cref="ToBytes"/>: compact JSON with
/// the fields in a fixed order and the details sorted by name, so anyone can recompute it from the fields.
/// </summary>
public sealed record AuditEntry(long Index, DateTimeOffset Time, string Actor, string Action, string? Account, IReadOnlyDictionary<string, string> Details)
{
    public static class Actors
    {
        public const string Operator = "operator";
        public const string Server = "server";
        public const string Account = "account";
    }

    /// <summary>Escapes only what JSON requires (quotes, backslash, control characters), so hashes are easy to recompute elsewhere.</summary>
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public byte[] ToBytes()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, AuditEntry.JsonOptions))
            Write(json, leafHash: false);
        return buffer.ToArray();
    }

    public byte[] LeafHash => MerkleTree.LeafHash(ToBytes());

    /// <summary>The entry's fields, then (for exports and HTTP) its leaf hash.</summary>
    public void Write(Utf8JsonWriter json, bool leafHash)
    {
        json.WriteStartObject();
        json.WriteNumber("index", Index);
        json.WriteString("time", Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        json.WriteString("actor", Actor);
        json.WriteString("action", Action);
        if (Account is null) json.WriteNull("account");
        else json.WriteString("account", Account);
        json.WriteStartObject("details");
        foreach (var (name, value) in Details.OrderBy(d => d.Key, StringComparer.Ordinal)) json.WriteString(name, value);
        json.WriteEndObject();
        if (leafHash) json.WriteString("leaf_hash", Convert.ToBase64String(LeafHash));
        json.WriteEndObject();
    }

    /// <summary>Reads the fields back; throws <see cref="FormatException"/> when one is missing or of the wrong kind.</summary>
    public static AuditEntry Parse(JsonElement json)
    {
        try
        {
            var details = new Dictionary<string, string>();
            foreach (var property in json.GetProperty("details").EnumerateObject())
                details[property.Name] = property.Value.GetString() ?? throw new FormatException("a detail is not a string");
            var account = json.GetProperty("account");
            return new AuditEntry(
                json.GetProperty("index").GetInt64(),
                DateTimeOffset.Parse(json.GetProperty("time").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                json.GetProperty("actor").GetString()!,
                json.GetProperty("action").GetString()!,
                account.ValueKind == JsonValueKind.Null ? null : account.GetString(),
                details);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or ArgumentNullException)
        {
            throw new FormatException($"not an audit entry: {e.Message}");
        }
    }

    /// <summary>One line for people: index, time, actor, action, account, details.</summary>
    public override string ToString() =>
        $"{Index,6}  {Time.UtcDateTime:yyyy-MM-dd HH:mm:ss}  {Actor,-8} {Action,-24} {Account ?? "-",-28} {string.Join(" ", Details.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key}={d.Value}"))}".TrimEnd();
}

/// <summary>
/// A signed tree head: the log's size and Merkle root at a time, signed with Ed25519 by the log key. The signature
/// covers <see cref="SignedBytes"/>: "candor audit tree head v1", then size and time (milliseconds since 1970) as
/// 64-bit big-endian integers, then the 32-byte root.
/// </summary>
public sealed record TreeHead(long Size, byte[] Root, DateTimeOffset Time, byte[] Signature, byte[] Key)
{
    private static readonly byte[] Label = "candor audit tree head v1"u8.ToArray();

    public static byte[] SignedBytes(long size, byte[] root, DateTimeOffset time)
    {
        var bytes = new byte[Label.Length + 16 + root.Length];
        Label.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(Label.Length), size);
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(Label.Length + 8), time.ToUnixTimeMilliseconds());
        root.CopyTo(bytes, Label.Length + 16);
        return bytes;
    }

    public bool SignatureValid =>
        Root.Length == MerkleTree.HashSize
        && PublicKey.TryImport(SignatureAlgorithm.Ed25519, Key, KeyBlobFormat.RawPublicKey, out var key)
        && SignatureAlgorithm.Ed25519.Verify(key!, SignedBytes(Size, Root, Time), Signature);

    public string KeyText => Convert.ToBase64String(Key);

    public void Write(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteNumber("size", Size);
        json.WriteString("root", Convert.ToBase64String(Root));
        json.WriteNumber("time", Time.ToUnixTimeMilliseconds());
        json.WriteString("signature", Convert.ToBase64String(Signature));
        json.WriteString("key", KeyText);
        json.WriteEndObject();
    }

    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, AuditEntry.JsonOptions)) Write(json);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static TreeHead Parse(JsonElement json)
    {
        try
        {
            return new TreeHead(
                json.GetProperty("size").GetInt64(),
                Convert.FromBase64String(json.GetProperty("root").GetString()!),
                DateTimeOffset.FromUnixTimeMilliseconds(json.GetProperty("time").GetInt64()),
                Convert.FromBase64String(json.GetProperty("signature").GetString()!),
                Convert.FromBase64String(json.GetProperty("key").GetString()!));
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or ArgumentNullException)
        {
            throw new FormatException($"not a tree head: {e.Message}");
        }
    }

    public static TreeHead Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return Parse(document.RootElement);
    }
}
