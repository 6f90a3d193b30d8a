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
        if (!Available || SecurityContext!.GetValue(ssl) is not SafeHandle { IsInvalid: false } handle
            || handle.GetType().FullName != "Microsoft.Win32.SafeHandles.SafeSslHandle")
            return false;
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
}
