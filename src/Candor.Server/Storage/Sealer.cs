using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Candor.Server.Storage;

/// <summary>
/// Seals and opens single records (AES-256-GCM) and turns lookup keys into keyed hashes (HMAC-SHA-256).
/// A sealed record is base64 of: version (1 byte), key id (4), nonce (12, never used twice: see
/// <see cref="NextNonce"/>), tag (16), ciphertext. The plaintext holds the record's name (the map key, archive
/// 'with' or key-value account, which the backend only sees hashed) and its value. The associated data binds the record to its shape, store,
/// stored (hashed) account and name, and key id: a record copied anywhere else fails to open.
/// </summary>
internal sealed class Sealer(KeyRing keys, byte[] indexKey)
{
    private const byte Version = 1;
    private const int NonceOffset = 5, TagOffset = NonceOffset + 12, Overhead = TagOffset + 16;
    private const int StackLimit = 512;
    private const int MaxRememberedUsers = 100_000;

    [ThreadStatic] private static byte[]? t_nonce;

    private readonly ConcurrentDictionary<string, string> _users = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string HashedUser, string Name), string> _names = new();

    // A reused HMAC context per thread costs a third of a one-shot HMACSHA256.HashData, which sets one up each call.
    private readonly ThreadLocal<IncrementalHash> _hmac = new(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, indexKey));

    public KeyRing Keys => keys;

    /// <summary>The stored form of an account name: 128 bits of HMAC-SHA-256 under the index key, base64url.</summary>
    public string Hash(string user)
    {
        // Every store operation hashes its account; the accounts in use are few enough to remember.
        if (_users.TryGetValue(user, out var hashed)) return hashed;
        if (_users.Count >= MaxRememberedUsers) _users.Clear();
        return _users[user] = HashPair("", user);
    }

    /// <summary>
    /// The stored form of a map key or archive 'with' within one account (<paramref name="hashedUser"/>): the same
    /// contact gets a different hash in each account, so a copy of the database does not show who shares contacts.
    /// </summary>
    public string Hash(string hashedUser, string name)
    {
        // Every archived message hashes its 'with' (bare and full) for both ends: the pairs in use are remembered too.
        if (_names.TryGetValue((hashedUser, name), out var hashed)) return hashed;
        if (_names.Count >= MaxRememberedUsers) _names.Clear();
        return _names[(hashedUser, name)] = HashPair(hashedUser, name);
    }

    /// <summary>
    /// What an archive item that refers to a shared body stores instead of a sealed value: a keyed hash binding the
    /// item's account and (hashed) correspondent to the body's key, so that an item moved to another account or
    /// pointed at another body is not served. Not remembered: each body is bound twice and never again.
    /// </summary>
    public string Bind(string hashedUser, string column, string bodyKey) => HashPair(hashedUser, column, bodyKey);

    /// <summary>HMAC of the parts' UTF-8, each after the first preceded by a zero byte.</summary>
    private string HashPair(string hashedUser, string name, string? more = null)
    {
        var max = Encoding.UTF8.GetMaxByteCount(hashedUser.Length + 1 + name.Length + 1 + (more?.Length ?? 0));
        byte[]? rented = null;
        var input = max <= StackLimit ? stackalloc byte[StackLimit] : rented = ArrayPool<byte>.Shared.Rent(max);
        var length = Encoding.UTF8.GetBytes(hashedUser, input);
        input[length++] = 0;
        length += Encoding.UTF8.GetBytes(name, input[length..]);
        if (more is not null)
        {
            input[length++] = 0;
            length += Encoding.UTF8.GetBytes(more, input[length..]);
        }
        Span<byte> mac = stackalloc byte[32];
        var hmac = _hmac.Value!;
        hmac.AppendData(input[..length]);
        hmac.GetHashAndReset(mac);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        return Base64Url.EncodeToString(mac[..16]);
    }

    public string Seal(RecordShape shape, string store, string user, string column, string name, string value) =>
        Seal(shape, store, user, column, name, value, default, Base64);

    /// <summary>
    /// As the other, for a value already in UTF-8, and the record itself rather than its base64 text (what
    /// <see cref="Seal(RecordShape, string, string, string, string, string)"/> returns is the base64 of this).
    /// </summary>
    public byte[] SealRecord(RecordShape shape, string store, string user, string column, string name, ReadOnlySpan<byte> value) =>
        Seal(shape, store, user, column, name, null, value, Copy);

    private delegate T Finish<T>(ReadOnlySpan<byte> record);
    private static readonly Finish<string> Base64 = record => Convert.ToBase64String(record);
    private static readonly Finish<byte[]> Copy = record => record.ToArray();

    private T Seal<T>(RecordShape shape, string store, string user, string column, string name, string? text, ReadOnlySpan<byte> utf8, Finish<T> finish)
    {
        var key = keys.Current;
        var nameLength = Encoding.UTF8.GetByteCount(name);
        var plainLength = 4 + nameLength + (text is null ? utf8.Length : Encoding.UTF8.GetByteCount(text));
        var adLength = AssociatedLength(store, user, column);
        var buffer = ArrayPool<byte>.Shared.Rent(Overhead + 2 * plainLength + adLength);
        var record = buffer.AsSpan(0, Overhead + plainLength);
        var plain = buffer.AsSpan(record.Length, plainLength);
        try
        {
            BinaryPrimitives.WriteInt32LittleEndian(plain, nameLength);
            Encoding.UTF8.GetBytes(name, plain[4..]);
            if (text is null) utf8.CopyTo(plain[(4 + nameLength)..]);
            else Encoding.UTF8.GetBytes(text, plain[(4 + nameLength)..]);
            var ad = buffer.AsSpan(record.Length + plainLength, adLength);
            Encrypt(key, shape, store, user, column, plain, record, ad);
            return finish(record);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Opens a record sealed by <see cref="Seal"/> at the same place; the name only when <paramref name="withName"/>.</summary>
    public (string? Name, string Value) Open(RecordShape shape, string store, string user, string column, string sealedText, bool withName)
    {
        var buffer = Decrypt(shape, store, user, column, sealedText, out var plain);
        try
        {
            var nameLength = BinaryPrimitives.ReadInt32LittleEndian(plain);
            if (nameLength < 0 || nameLength > plain.Length - 4) throw Failure(shape, store, "its content is malformed");
            return (withName ? Encoding.UTF8.GetString(plain.Slice(4, nameLength)) : null, Encoding.UTF8.GetString(plain[(4 + nameLength)..]));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The record sealed with the current key instead, in the same place; null when it already is.</summary>
    public string? Reseal(RawRecord record)
    {
        var key = keys.Current;
        if (KeyIdOf(record.Value) == key.Id) return null;
        var buffer = Decrypt(record.Shape, record.Store, record.User, record.Name, record.Value, out var plain);
        try
        {
            var adLength = AssociatedLength(record.Store, record.User, record.Name);
            var output = ArrayPool<byte>.Shared.Rent(Overhead + plain.Length + adLength);
            try
            {
                var sealedRecord = output.AsSpan(0, Overhead + plain.Length);
                Encrypt(key, record.Shape, record.Store, record.User, record.Name, plain, sealedRecord, output.AsSpan(sealedRecord.Length, adLength));
                return Convert.ToBase64String(sealedRecord);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(output);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The id of the key that sealed a record, read from its header; null when it is not a sealed record.</summary>
    public static uint? KeyIdOf(string sealedText)
    {
        Span<byte> header = stackalloc byte[6];
        return sealedText.Length >= 8 && Convert.TryFromBase64Chars(sealedText.AsSpan(0, 8), header, out _) ? KeyIdOf(header) : null;
    }

    /// <summary>As the other, for a record as <see cref="SealRecord"/> returns it (not base64).</summary>
    public static uint? KeyIdOf(ReadOnlySpan<byte> record) =>
        record.Length >= 5 && record[0] == Version ? BinaryPrimitives.ReadUInt32BigEndian(record[1..]) : null;

    private static void Encrypt(MasterKey key, RecordShape shape, string store, string user, string column, ReadOnlySpan<byte> plain, Span<byte> record, Span<byte> ad)
    {
        record[0] = Version;
        BinaryPrimitives.WriteUInt32BigEndian(record[1..], key.Id);
        var nonce = record.Slice(NonceOffset, 12);
        NextNonce(nonce);
        WriteAssociated(ad, shape, store, user, column, key.Id);
        key.Aes.Encrypt(nonce, plain, record[Overhead..], record.Slice(TagOffset, 16), ad);
    }

    /// <summary>
    /// A nonce no other record gets: each thread starts at 96 random bits from the OS generator and counts up in the
    /// low 64. Two threads (in this process or any other, under any key) collide only if their 32 random high bits
    /// are equal and their counters overlap, which is less likely than two random nonces colliding, and it saves the
    /// generator call per record (as costly as the encryption itself for a short message).
    /// </summary>
    private static void NextNonce(Span<byte> nonce)
    {
        var state = t_nonce ??= RandomNumberGenerator.GetBytes(12);
        var counter = BinaryPrimitives.ReadUInt64LittleEndian(state.AsSpan(4)) + 1;
        BinaryPrimitives.WriteUInt64LittleEndian(state.AsSpan(4), counter);
        state.CopyTo(nonce);
    }

    /// <summary>Decrypts into a rented buffer (returned to the caller with the plaintext span inside it).</summary>
    private byte[] Decrypt(RecordShape shape, string store, string user, string column, string sealedText, out Span<byte> plain)
    {
        var recordLength = sealedText.Length / 4 * 3;
        var adLength = AssociatedLength(store, user, column);
        var buffer = ArrayPool<byte>.Shared.Rent(2 * recordLength + adLength);
        try
        {
            if (!Convert.TryFromBase64String(sealedText, buffer.AsSpan(0, recordLength), out var length) || length < Overhead + 4 || buffer[0] != Version)
                throw Failure(shape, store, "it is not a sealed record");
            var record = buffer.AsSpan(0, length);
            var id = BinaryPrimitives.ReadUInt32BigEndian(record[1..]);
            var key = keys.Find(id) ?? throw Failure(shape, store, $"it is sealed with key {id:x8}, which this server does not hold");
            var ad = buffer.AsSpan(2 * recordLength, adLength);
            WriteAssociated(ad, shape, store, user, column, id);
            plain = buffer.AsSpan(recordLength, length - Overhead);
            try
            {
                key.Aes.Decrypt(record.Slice(NonceOffset, 12), record[Overhead..], record.Slice(TagOffset, 16), plain, ad);
            }
            catch (AuthenticationTagMismatchException)
            {
                throw Failure(shape, store, "it was sealed for another account, name or store (moved there) or altered");
            }
            return buffer;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static int AssociatedLength(string store, string user, string column) =>
        1 + 1 + 4 + 12 + Encoding.UTF8.GetByteCount(store) + Encoding.UTF8.GetByteCount(user) + Encoding.UTF8.GetByteCount(column);

    private static void WriteAssociated(Span<byte> ad, RecordShape shape, string store, string user, string column, uint keyId)
    {
        ad[0] = Version;
        ad[1] = (byte)shape;
        BinaryPrimitives.WriteUInt32BigEndian(ad[2..], keyId);
        var at = 6;
        foreach (var part in (ReadOnlySpan<string>)[store, user, column])
        {
            var written = Encoding.UTF8.GetBytes(part, ad[(at + 4)..]);
            BinaryPrimitives.WriteInt32LittleEndian(ad[at..], written);
            at += 4 + written;
        }
    }

    public static SealedRecordException Failure(RecordShape shape, string store, string reason) =>
        new($"a {shape switch { RecordShape.Map => "map", RecordShape.Archive => "archive", RecordShape.ArchiveBody => "archive body", _ => "key-value" }} record of store '{store}' does not open: {reason}; it is not served");
}

/// <summary>A stored record failed to open (moved, altered, or sealed with a key that is gone).</summary>
public sealed class SealedRecordException(string message) : Exception(message);
