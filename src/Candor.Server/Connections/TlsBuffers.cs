using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Candor.Server.Connections;

/// <summary>
/// Lets an idle TLS connection give back OpenSSL's record buffers. OpenSSL keeps a read and a write buffer of
/// about 17 KiB each for the whole life of a connection unless SSL_MODE_RELEASE_BUFFERS is set, and .NET
/// neither sets it nor offers a way to: for an XMPP server, whose connections are idle almost all the time,
/// those 34 KiB are most of what a TLS connection costs. With the mode set, OpenSSL frees a buffer as soon as
/// it is empty and takes a fresh one from malloc for the next record.
/// </summary>
/// <remarks>
/// The SSL handle is not public: it is read from SslStream's private field, and used only when it is what
/// this code expects (OpenSSL 3 on Linux, the handle type .NET 8-10 uses); otherwise nothing happens and the
/// connection keeps its buffers. <see cref="ReleaseWhenIdle"/> says which case this process is in.
/// </remarks>
internal static class TlsBuffers
{
    private const int SslCtrlMode = 33;
    private const nint SslModeReleaseBuffers = 0x10;
    private const string LibSsl = "libssl.so.3";

    private static readonly FieldInfo? SecurityContext =
        typeof(SslStream).GetField("_securityContext", BindingFlags.NonPublic | BindingFlags.Instance);

    /// <summary>
    /// True when the runtime's TLS is the OpenSSL 3 this code can reach; first read after a handshake, when the
    /// runtime has loaded its libssl.
    /// </summary>
    private static bool Available { get; } = SecurityContext is not null && OpenSsl3Loaded();

    /// <summary>Sets SSL_MODE_RELEASE_BUFFERS on an authenticated stream; false when that is not possible here.</summary>
    public static bool ReleaseWhenIdle(SslStream ssl)
    {
        if (SslHandle(ssl) is not { } handle) return false;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return (SSL_ctrl(handle.DangerousGetHandle(), SslCtrlMode, SslModeReleaseBuffers, 0) & SslModeReleaseBuffers) != 0;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>The stream's OpenSSL handle, when this process's TLS is the OpenSSL 3 this code expects.</summary>
    internal static SafeHandle? SslHandle(SslStream ssl) =>
        Available && SecurityContext!.GetValue(ssl) is SafeHandle { IsInvalid: false } handle
        && handle.GetType().FullName == "Microsoft.Win32.SafeHandles.SafeSslHandle" ? handle : null;

    /// <summary>
    /// The runtime loads libssl itself; calling into another libssl than the one that made the handle would be
    /// fatal, so this only goes ahead when libssl.so.3 is the one mapped into the process.
    /// </summary>
    private static bool OpenSsl3Loaded()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            var maps = File.ReadAllText("/proc/self/maps");
            return maps.Contains("/" + LibSsl, StringComparison.Ordinal) && !maps.Contains("/libssl.so.1", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    [DllImport(LibSsl)]
    private static extern nint SSL_ctrl(nint ssl, int cmd, nint larg, nint parg);

    [DllImport(LibSsl)]
    internal static extern nint SSL_get_rbio(nint ssl);

    [DllImport(LibSsl)]
    internal static extern nint SSL_get_wbio(nint ssl);
}

/// <summary>
/// Gives back the buffers of the two memory BIOs .NET puts between OpenSSL and the stream (one for the records
/// received, one for the records to send). Each keeps, for the connection's life, a buffer as large as the
/// largest batch of records that ever passed through it (about 21 KiB after one large stanza either way); once
/// empty, it is swapped for an empty one. OpenSSL's SSL object is not thread-safe and SslStream reads and
/// writes on different threads, so a swap happens only while neither side is inside SslStream: the read side
/// is marked from the moment the read loop asks SslStream for data to the moment SslStream asks the transport
/// for more (or returns), the write side for each flush; whichever side finishes while the other is quiet swaps.
/// </summary>
internal sealed class TlsIdleMemory
{
    public const int Reading = 1, Writing = 2;
    private const int Releasing = 4;
    private const int BioTypeMem = 0x401, BioCtrlSetBufMem = 114, BioCtrlGetBufMemPtr = 115, BioClose = 1;
    private const string LibCrypto = "libcrypto.so.3";
    private SafeHandle? _ssl;
    private int _state;

    /// <summary>Starts releasing for an authenticated stream; false (and nothing happens) when not possible here.</summary>
    public bool Bind(SslStream ssl)
    {
        if (TlsBuffers.SslHandle(ssl) is not { } handle) return false;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var native = handle.DangerousGetHandle();
            if (BIO_method_type(TlsBuffers.SSL_get_rbio(native)) != BioTypeMem || BIO_method_type(TlsBuffers.SSL_get_wbio(native)) != BioTypeMem)
                return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
        _ssl = handle;
        return true;
    }

    /// <summary>Marks a side as inside SslStream; waits (briefly) while a release is under way.</summary>
    public void Enter(int side)
    {
        var spin = new SpinWait();
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if ((state & Releasing) == 0 && Interlocked.CompareExchange(ref _state, state | side, state) == state) return;
            spin.SpinOnce();
        }
    }

    public void Exit(int side) => Interlocked.And(ref _state, ~side);

    /// <summary>Releases the empty BIOs' buffers when neither side is inside SslStream; the bytes given back.</summary>
    public long TryRelease()
    {
        if (_ssl is null || Interlocked.CompareExchange(ref _state, Releasing, 0) != 0) return 0;
        var added = false;
        try
        {
            _ssl.DangerousAddRef(ref added);
            var native = _ssl.DangerousGetHandle();
            return Release(TlsBuffers.SSL_get_rbio(native)) + Release(TlsBuffers.SSL_get_wbio(native));
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
        finally
        {
            if (added) _ssl.DangerousRelease();
            Volatile.Write(ref _state, 0);
        }
    }

    private static long Release(nint bio)
    {
        var (length, max) = Capacity(bio);
        if (length != 0 || max == 0) return 0;
        var empty = BUF_MEM_new();
        if (empty == 0) return 0;
        // BIO_set_mem_buf: frees the old BUF_MEM and its data, the BIO owns the new one (BIO_CLOSE).
        BIO_ctrl(bio, BioCtrlSetBufMem, BioClose, empty);
        return max;
    }

    /// <summary>BIO_get_mem_ptr: the BIO's BUF_MEM { size_t length; char *data; size_t max; ... } (openssl/buffer.h).</summary>
    private static (long Length, long Max) Capacity(nint bio)
    {
        BIO_ctrl(bio, BioCtrlGetBufMemPtr, 0, out var memory);
        return memory == 0 ? (0, 0) : ((long)Marshal.ReadIntPtr(memory, 0), (long)Marshal.ReadIntPtr(memory, 2 * IntPtr.Size));
    }

    [DllImport(LibCrypto)]
    private static extern int BIO_method_type(nint bio);

    [DllImport(LibCrypto)]
    private static extern nint BIO_ctrl(nint bio, int cmd, nint larg, nint parg);

    [DllImport(LibCrypto)]
    private static extern nint BIO_ctrl(nint bio, int cmd, nint larg, out nint parg);

    [DllImport(LibCrypto)]
    private static extern nint BUF_MEM_new();
}
