using System.Text;

namespace Candor.Xmpp.Sasl;

/// <summary>The PLAIN mechanism message (RFC 4616): [authzid] NUL authcid NUL passwd.</summary>
public static class SaslPlain
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>False for anything but exactly two NULs, empty authcid or password, or invalid UTF-8. An empty authzid is null.</summary>
    public static bool TryParse(ReadOnlySpan<byte> message, out string? authzid, out string authcid, out string password)
    {
        authzid = null;
        authcid = "";
        password = "";
        int first = message.IndexOf((byte)0);
        if (first < 0)
            return false;
        int second = message[(first + 1)..].IndexOf((byte)0) + first + 1;
        if (second == first || message[(second + 1)..].Contains((byte)0))
            return false;
        if (second == first + 1 || second == message.Length - 1)
            return false;
        try
        {
            authzid = first == 0 ? null : StrictUtf8.GetString(message[..first]);
            authcid = StrictUtf8.GetString(message[(first + 1)..second]);
            password = StrictUtf8.GetString(message[(second + 1)..]);
            return true;
        }
        catch (DecoderFallbackException)
        {
            (authzid, authcid, password) = (null, "", "");
            return false;
        }
    }

    public static byte[] Create(string? authzid, string authcid, string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(authcid);
        ArgumentException.ThrowIfNullOrEmpty(password);
        if ((authzid ?? "").Contains('\0') || authcid.Contains('\0') || password.Contains('\0'))
            throw new ArgumentException("PLAIN fields cannot contain NUL.");
        return Encoding.UTF8.GetBytes((authzid ?? "") + "\0" + authcid + "\0" + password);
    }
}
