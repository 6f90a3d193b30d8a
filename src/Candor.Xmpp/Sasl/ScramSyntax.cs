using System.Buffers;
using System.Text;

namespace Candor.Xmpp.Sasl;

/// <summary>The attribute syntax shared by the SCRAM messages (RFC 5802 §7).</summary>
internal static class ScramSyntax
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    static readonly SearchValues<char> Base64Chars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
    static readonly SearchValues<char> ChannelBindingNameChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-");

    public static string Decode(ReadOnlySpan<byte> message)
    {
        string text;
        try
        {
            text = StrictUtf8.GetString(message);
        }
        catch (DecoderFallbackException)
        {
            throw Malformed("The message is not valid UTF-8.");
        }
        if (text.Contains('\0'))
            throw Malformed("The message contains NUL.");
        return text;
    }

    public static byte[] Encode(string text) => Encoding.UTF8.GetBytes(text);

    public static SaslException Malformed(string message) => new(SaslFailure.MalformedRequest, message);

    /// <summary>The value of <paramref name="part"/> if it is the attribute <paramref name="name"/>, else null.</summary>
    public static string? Value(string part, char name) =>
        part.Length >= 2 && part[0] == name && part[1] == '=' ? part[2..] : null;

    public static string Required(string[] parts, int index, char name) =>
        index < parts.Length && Value(parts[index], name) is { } value
            ? value
            : throw Malformed($"Expected the attribute '{name}'.");

    /// <summary>Extensions are "attr=value"; RFC 5802 reserves 'm' for mandatory ones, which nobody defines.</summary>
    public static void CheckExtensions(string[] parts, int start)
    {
        for (int i = start; i < parts.Length; i++)
        {
            string part = parts[i];
            if (part.Length < 3 || !char.IsAsciiLetter(part[0]) || part[1] != '=')
                throw Malformed("An extension is not an attribute-value pair.");
            if (part[0] == 'm')
                throw Malformed("Mandatory extensions are not supported.");
        }
    }

    public static bool IsNonce(string value)
    {
        foreach (char c in value)
        {
            if (c is < '\u0021' or > '\u007E' or ',')
                return false;
        }
        return value.Length > 0;
    }

    public static bool IsChannelBindingName(string value) =>
        value.Length > 0 && !value.AsSpan().ContainsAnyExcept(ChannelBindingNameChars);

    public static string Nonce(string value) =>
        IsNonce(value) ? value : throw Malformed("The nonce is not printable ASCII.");

    public static byte[] Base64(string value)
    {
        if (value.Length == 0 || value.Length % 4 != 0 || value.AsSpan().ContainsAnyExcept(Base64Chars))
            throw Malformed("An attribute is not valid base64.");
        try
        {
            return Convert.FromBase64String(value);
        }
        catch (FormatException)
        {
            throw Malformed("An attribute is not valid base64.");
        }
    }

    /// <summary>Decodes a saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed.</summary>
    public static string SaslName(string value)
    {
        if (value.Length == 0)
            throw Malformed("A name is empty.");
        if (!value.Contains('='))
            return value;
        var builder = new StringBuilder(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            if (value[i] != '=')
            {
                builder.Append(value[i]);
                continue;
            }
            builder.Append(value.AsSpan(i, Math.Min(3, value.Length - i)) switch
            {
                "=2C" => ',',
                "=3D" => '=',
                _ => throw Malformed("A name contains '=' that is not =2C or =3D."),
            });
            i += 2;
        }
        return builder.ToString();
    }

    public static string EscapeSaslName(string value) => value.Replace("=", "=3D").Replace(",", "=2C");
}
