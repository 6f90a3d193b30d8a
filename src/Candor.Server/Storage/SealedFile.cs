using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Candor.Server.Storage;

/// <summary>
/// A file sealed at rest (promise 4) and streamed in both directions: never more than one chunk in memory.
/// Layout: "CNDF", version (1), master key id (4), salt (32), sealed metadata (length 4, ciphertext, tag 16), then
/// the content in chunks of <see cref="ChunkSize"/> bytes, each AES-256-GCM with its own tag. The file's key is
/// HKDF of the master key's file key with the random salt, so nonces only need to be unique within one file: the
/// chunk's index and a flag for the last chunk (which stops a truncated file from opening as a shorter one). The
/// metadata's associated data is the file's name on disk, so a file renamed to another's name does not open.
/// </summary>
public static class SealedFile
{
    public const int ChunkSize = 64 * 1024;
    private const int TagSize = 16, SaltSize = 32, HeaderSize = 4 + 1 + 4 + SaltSize;
    private const byte Version = 1;
    private const ulong MetadataCounter = ulong.MaxValue;
    private static ReadOnlySpan<byte> Magic => "CNDF"u8;

    /// <summary>Starts writing a sealed file of exactly <paramref name="size"/> content bytes at <paramref name="path"/>.</summary>
    public static Writer Create(string path, KeyRing keys, string name, ReadOnlySpan<byte> metadata, long size)
    {
        var master = keys.Current;
        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.Asynchronous };
        if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        var file = new FileStream(path, create);
        var header = new byte[HeaderSize + 4 + metadata.Length + TagSize];
        Magic.CopyTo(header);
        header[4] = Version;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(5), master.Id);
        salt.CopyTo(header, 9);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(HeaderSize), metadata.Length);
        var aes = new AesGcm(FileKey(master, salt), TagSize);
        Span<byte> nonce = stackalloc byte[12];
        Nonce(nonce, MetadataCounter, false);
        var sealedMetadata = header.AsSpan(HeaderSize + 4);
        aes.Encrypt(nonce, metadata, sealedMetadata[..metadata.Length], sealedMetadata[metadata.Length..], Encoding.UTF8.GetBytes(name));
        file.Write(header);
        return new Writer(file, aes, size);
    }

    /// <summary>Opens a sealed file's header and metadata; null metadata when it is not a sealed file or does not open.</summary>
    public static Reader Open(string path, KeyRing keys, string name)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 4096, FileOptions.Asynchronous);
        try
        {
            Span<byte> header = stackalloc byte[HeaderSize + 4];
            file.ReadExactly(header);
            if (!header[..4].SequenceEqual(Magic) || header[4] != Version)
                throw new SealedRecordException($"{path} is not a sealed file");
            var master = keys.Find(BinaryPrimitives.ReadUInt32BigEndian(header[5..]))
                ?? throw new SealedRecordException($"{path} is sealed with a master key this server does not hold");
            var length = BinaryPrimitives.ReadInt32BigEndian(header[HeaderSize..]);
            if (length is < 0 or > 64 * 1024) throw new SealedRecordException($"{path} has a damaged header");
            var aes = new AesGcm(FileKey(master, header.Slice(9, SaltSize).ToArray()), TagSize);
            var sealedMetadata = new byte[length + TagSize];
            file.ReadExactly(sealedMetadata);
            var metadata = new byte[length];
            Span<byte> nonce = stackalloc byte[12];
            Nonce(nonce, MetadataCounter, false);
            try
            {
                aes.Decrypt(nonce, sealedMetadata.AsSpan(0, length), sealedMetadata.AsSpan(length), metadata, Encoding.UTF8.GetBytes(name));
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new SealedRecordException($"{path} failed its integrity check");
            }
            return new Reader(file, aes, metadata, file.Position, master.Id);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Seals again with the current master key every file in <paramref name="folder"/> (name.cndf) that another key
    /// sealed, replacing each by rename; returns how many. Part of a key rotation (<see cref="SealedStorage.RotateAsync"/>).
    /// </summary>
    public static async Task<long> ResealFolderAsync(string folder, KeyRing keys, string extension = ".cndf")
    {
        if (!Directory.Exists(folder)) return 0;
        long resealed = 0;
        foreach (var path in Directory.EnumerateFiles(folder, "*" + extension))
        {
            var name = Path.GetFileNameWithoutExtension(path);
            await using var reader = Open(path, keys, name);
            if (reader.KeyId == keys.Current.Id) continue;
            var size = reader.Size;
            var temporary = path + ".reseal";
            File.Delete(temporary);
            await using (var writer = Create(temporary, keys, name, reader.Metadata, size))
            {
                await reader.CopyToAsync(writer.WriteAsync, size, 0, size);
                await writer.CompleteAsync();
            }
            File.Move(temporary, path, overwrite: true);
            resealed++;
        }
        return resealed;
    }

    private static byte[] FileKey(MasterKey master, byte[] salt) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, master.FileKey, 32, salt, "candor file v1"u8.ToArray());

    private static void Nonce(Span<byte> nonce, ulong counter, bool last)
    {
        nonce.Clear();
        BinaryPrimitives.WriteUInt64BigEndian(nonce, counter);
        nonce[8] = last ? (byte)1 : (byte)0;
    }

    /// <summary>Takes the content in pieces of any size; <see cref="CompleteAsync"/> once all of it was written.</summary>
    public sealed class Writer(FileStream file, AesGcm aes, long size) : IAsyncDisposable
    {
        private readonly byte[] _plain = ArrayPool<byte>.Shared.Rent(ChunkSize);
        private readonly byte[] _sealed = ArrayPool<byte>.Shared.Rent(ChunkSize + TagSize);
        private int _buffered;
        private ulong _chunk;
        private bool _finished;

        public long Written { get; private set; }

        /// <summary>Adds content; throws <see cref="InvalidDataException"/> past the declared size.</summary>
        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellation = default)
        {
            if (Written + data.Length > size) throw new InvalidDataException($"more than the declared {size} bytes");
            Written += data.Length;
            while (!data.IsEmpty)
            {
                var take = Math.Min(ChunkSize - _buffered, data.Length);
                data.Span[..take].CopyTo(_plain.AsSpan(_buffered));
                _buffered += take;
                data = data[take..];
                // The last chunk is sealed once the declared size is reached, so a full last chunk is still marked last.
                if (Written == size && data.IsEmpty) await FlushChunkAsync(last: true, cancellation);
                else if (_buffered == ChunkSize) await FlushChunkAsync(last: false, cancellation);
            }
        }

        /// <summary>Ends the file; throws <see cref="InvalidDataException"/> when less than the declared size came.</summary>
        public async ValueTask CompleteAsync(CancellationToken cancellation = default)
        {
            if (Written != size) throw new InvalidDataException($"{Written} of the declared {size} bytes");
            if (!_finished) await FlushChunkAsync(last: true, cancellation);
            await file.FlushAsync(cancellation);
            file.Flush(flushToDisk: true);
        }

        private async ValueTask FlushChunkAsync(bool last, CancellationToken cancellation)
        {
            if (_finished) return;
            Seal(last);
            await file.WriteAsync(_sealed.AsMemory(0, _buffered + TagSize), cancellation);
            _buffered = 0;
            _chunk++;
            _finished = last;
        }

        private void Seal(bool last)
        {
            Span<byte> nonce = stackalloc byte[12];
            Nonce(nonce, _chunk, last);
            aes.Encrypt(nonce, _plain.AsSpan(0, _buffered), _sealed.AsSpan(0, _buffered), _sealed.AsSpan(_buffered, TagSize));
        }

        public async ValueTask DisposeAsync()
        {
            await file.DisposeAsync();
            aes.Dispose();
            ArrayPool<byte>.Shared.Return(_plain);
            ArrayPool<byte>.Shared.Return(_sealed);
        }
    }

    /// <summary>Reads ranges of a sealed file's content, opening only the chunks the range touches.</summary>
    public sealed class Reader(FileStream file, AesGcm aes, byte[] metadata, long contentStart, uint keyId) : IAsyncDisposable, IDisposable
    {
        public ReadOnlySpan<byte> Metadata => metadata;

        public uint KeyId { get; } = keyId;

        /// <summary>The content's length, from the file's.</summary>
        public long Size
        {
            get
            {
                var stored = file.Length - contentStart;
                return stored - TagSize * ((stored + ChunkSize + TagSize - 1) / (ChunkSize + TagSize));
            }
        }

        /// <summary>Hands content bytes [offset, offset + count) of a file of <paramref name="size"/> bytes to <paramref name="write"/>, a chunk's worth at a time.</summary>
        public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> write, long size, long offset, long count, CancellationToken cancellation = default)
        {
            var chunks = size == 0 ? 1 : (size + ChunkSize - 1) / ChunkSize;
            var plain = ArrayPool<byte>.Shared.Rent(ChunkSize);
            var sealedChunk = ArrayPool<byte>.Shared.Rent(ChunkSize + TagSize);
            try
            {
                var index = offset / ChunkSize;
                var skip = (int)(offset % ChunkSize);
                while (count > 0)
                {
                    var length = (int)Math.Min(ChunkSize, size - index * ChunkSize);
                    file.Position = contentStart + index * (long)(ChunkSize + TagSize);
                    await file.ReadExactlyAsync(sealedChunk.AsMemory(0, length + TagSize), cancellation);
                    Open(sealedChunk, plain, length, (ulong)index, index == chunks - 1);
                    var take = (int)Math.Min(length - skip, count);
                    await write(plain.AsMemory(skip, take), cancellation);
                    count -= take;
                    skip = 0;
                    index++;
                }
            }
            catch (EndOfStreamException)
            {
                throw new SealedRecordException($"{file.Name} is shorter than its content");
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(plain);
                ArrayPool<byte>.Shared.Return(sealedChunk);
            }
        }

        private void Open(byte[] sealedChunk, byte[] plain, int length, ulong index, bool last)
        {
            Span<byte> nonce = stackalloc byte[12];
            Nonce(nonce, index, last);
            try
            {
                aes.Decrypt(nonce, sealedChunk.AsSpan(0, length), sealedChunk.AsSpan(length, TagSize), plain.AsSpan(0, length));
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new SealedRecordException($"{file.Name} failed its integrity check at chunk {index}");
            }
        }

        public async ValueTask DisposeAsync()
        {
            await file.DisposeAsync();
            aes.Dispose();
        }

        public void Dispose()
        {
            file.Dispose();
            aes.Dispose();
        }
    }
}
