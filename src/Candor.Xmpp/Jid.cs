using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Candor.Xmpp;

public sealed class JidFormatException(string message) : FormatException(message);

/// <summary>An XMPP address (RFC 7622) with every part prepared, so ordinal comparison is address comparison.</summary>
public sealed class Jid : IEquatable<Jid>
{
    const int MaxPartBytes = 1023;

    static readonly IdnMapping Idn = new() { UseStd3AsciiRules = true };

    string? _text;
    Jid? _bare;

    Jid(string? local, string domain, string? resource, string? text)
    {
        Local = local;
        Domain = domain;
        Resource = resource;
        _text = text;
    }

    public string? Local { get; }
    public string Domain { get; }
    public string? Resource { get; }
    public bool IsBare => Resource is null;
    public Jid Bare => IsBare ? this : _bare ??= new Jid(Local, Domain, null, null);

    public static Jid Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out Jid? jid, out string? error) ? jid : throw new JidFormatException(error);
    }

    public static bool TryParse(string? text, [NotNullWhen(true)] out Jid? jid) =>
        TryParse(text, out jid, out _);

    public static Jid Create(string? local, string domain, string? resource = null)
    {
        ArgumentNullException.ThrowIfNull(domain);
        string? error = null;
        string? preparedLocal = local is null ? null : PrepareLocal(local, ref error);
        string? preparedDomain = PrepareDomain(domain, ref error);
        string? preparedResource = resource is null ? null : PrepareResource(resource, ref error);
        if (error is not null)
            throw new JidFormatException(error);
        return new Jid(preparedLocal, preparedDomain!, preparedResource, null);
    }

    public Jid WithResource(string resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        string? error = null;
        string? prepared = PrepareResource(resource, ref error);
        if (error is not null)
            throw new JidFormatException(error);
        return new Jid(Local, Domain, prepared, null);
    }

    public override string ToString() => _text ??= Format();

    public bool Equals(Jid? other) =>
        other is not null && (ReferenceEquals(this, other)
            || string.Equals(Domain, other.Domain, StringComparison.Ordinal)
            && string.Equals(Local, other.Local, StringComparison.Ordinal)
            && string.Equals(Resource, other.Resource, StringComparison.Ordinal));

    public override bool Equals(object? obj) => Equals(obj as Jid);

    public override int GetHashCode() => HashCode.Combine(Local, Domain, Resource);

    public static bool operator ==(Jid? left, Jid? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(Jid? left, Jid? right) => !(left == right);

    static bool TryParse(string? text, [NotNullWhen(true)] out Jid? jid, [NotNullWhen(false)] out string? error)
    {
        jid = null;
        error = null;
        if (text is null)
        {
            error = "The JID is null.";
            return false;
        }

        // RFC 7622 §3.2: the first '/' starts the resourcepart, then the first '@' ends the localpart.
        ReadOnlySpan<char> rest = text;
        ReadOnlySpan<char> resourceText = default;
        bool hasResource = false;
        int slash = rest.IndexOf('/');
        if (slash >= 0)
        {
            resourceText = rest[(slash + 1)..];
            rest = rest[..slash];
            hasResource = true;
        }
        ReadOnlySpan<char> localText = default;
        bool hasLocal = false;
        int at = rest.IndexOf('@');
        if (at >= 0)
        {
            localText = rest[..at];
            rest = rest[(at + 1)..];
            hasLocal = true;
        }

        string? local = hasLocal ? PrepareLocal(localText, ref error) : null;
        string? domain = PrepareDomain(rest, ref error);
        string? resource = hasResource ? PrepareResource(resourceText, ref error) : null;
        if (error is not null)
            return false;

        bool canonical = Unchanged(local, localText) && Unchanged(domain, rest) && Unchanged(resource, resourceText);
        jid = new Jid(local, domain!, resource, canonical ? text : null);
        return true;
    }

    static bool Unchanged(string? prepared, ReadOnlySpan<char> original) =>
        prepared is null || prepared.AsSpan().SequenceEqual(original);

    static string? PrepareLocal(ReadOnlySpan<char> text, ref string? error)
    {
        if (error is not null)
            return null;
        string? prepared = Precis.PrepareUsernameCaseMapped(text);
        if (prepared is null || prepared.AsSpan().IndexOfAny("\"&'/:<>@") >= 0)
            error = "The localpart is empty or contains a disallowed character.";
        else if (Encoding.UTF8.GetByteCount(prepared) > MaxPartBytes)
            error = "The localpart is longer than 1023 bytes.";
        return prepared;
    }

    static string? PrepareResource(ReadOnlySpan<char> text, ref string? error)
    {
        if (error is not null)
            return null;
        string? prepared = Precis.PrepareOpaqueString(text);
        if (prepared is null)
            error = "The resourcepart is empty or contains a disallowed character.";
        else if (Encoding.UTF8.GetByteCount(prepared) > MaxPartBytes)
            error = "The resourcepart is longer than 1023 bytes.";
        return prepared;
    }

    static string? PrepareDomain(ReadOnlySpan<char> text, ref string? error)
    {
        if (error is not null)
            return null;
        string? prepared = text.Length > MaxPartBytes ? null
            : IsPlainHostName(text) ? Precis.ToLowerAscii(text)
            : text.StartsWith('[') ? PrepareIPv6Literal(text)
            : PrepareDomainName(text.ToString());
        if (prepared is null)
            error = "The domainpart is empty or not a valid domain name or IP literal.";
        else if (Encoding.UTF8.GetByteCount(prepared) > MaxPartBytes)
            error = "The domainpart is longer than 1023 bytes.";
        return prepared;
    }

    // The common case needs no IDNA processing: LDH labels that cannot be A-labels, within the DNS length limit.
    static bool IsPlainHostName(ReadOnlySpan<char> text)
    {
        if (text.Length > 253)
            return false;
        foreach (Range range in text.Split('.'))
        {
            ReadOnlySpan<char> label = text[range];
            if (label.IsEmpty || label.Length > 63 || label[0] == '-' || label[^1] == '-')
                return false;
            if (label.Length >= 4 && label[2] == '-' && label[3] == '-')
                return false;
            foreach (char c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                    return false;
            }
        }
        return true;
    }

    static string? PrepareIPv6Literal(ReadOnlySpan<char> text)
    {
        if (text.Length < 3 || text[^1] != ']' || text.Contains('%'))
            return null;
        return IPAddress.TryParse(text[1..^1], out IPAddress? address) && address.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{address}]"
            : null;
    }

    static string? PrepareDomainName(string text)
    {
        try
        {
            // GetAscii validates (UTS #46 mapping, STD3 rules, label lengths); GetUnicode yields the U-label form.
            string ascii = Idn.GetAscii(text);
            if (ascii.EndsWith('.'))
                ascii = ascii[..^1];
            if (ascii.Length == 0 || ascii.EndsWith('.'))
                return null;
            return Idn.GetUnicode(ascii).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    string Format()
    {
        var builder = new StringBuilder();
        if (Local is not null)
            builder.Append(Local).Append('@');
        builder.Append(Domain);
        if (Resource is not null)
            builder.Append('/').Append(Resource);
        return builder.ToString();
    }
}
