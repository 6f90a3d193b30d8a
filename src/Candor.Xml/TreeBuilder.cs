using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Candor.Xml;

/// <summary>
/// Builds elements from the bytes of one complete top-level token that <see cref="XmppStreamParser"/> has
/// delimited: checks the characters, names, attributes and nesting, resolves namespaces and decodes references.
/// Keeps the namespace bindings of the stream header, which stay in scope for every stanza.
/// </summary>
internal sealed class TreeBuilder(XmlLimits limits)
{
    public const string XmlNamespace = "http://www.w3.org/XML/1998/namespace";
    private const string XmlnsNamespace = "http://www.w3.org/2000/xmlns/";

    private enum TextKind { Content, Attribute, CData }

    // Tab, LF, CR and printable ASCII (DEL is a legal XML character); anything else needs a closer look.
    private static readonly SearchValues<byte> PlainAscii =
        SearchValues.Create([9, 10, 13, .. Enumerable.Range(0x20, 0x60).Select(b => (byte)b)]);
    private static readonly SearchValues<byte> ForbiddenControls =
        SearchValues.Create([.. Enumerable.Range(0, 0x20).Where(b => b is not (9 or 10 or 13)).Select(b => (byte)b)]);
    private static readonly SearchValues<byte> NameBytes = SearchValues.Create(
        "-.0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"u8.ToArray()
            .Concat(Enumerable.Range(0x80, 0x80).Select(b => (byte)b)).ToArray());
    private static readonly SearchValues<byte> ContentSpecials = SearchValues.Create("&\r"u8);
    private static readonly SearchValues<byte> AttributeSpecials = SearchValues.Create("&\r\n\t"u8);
    private static readonly SearchValues<byte> CDataSpecials = SearchValues.Create("\r"u8);

    private readonly List<Binding> _scope = [new("xml", XmlNamespace)];
    private int _rootScope = 1;
    private static readonly byte[] StreamHeaderName = "stream:stream"u8.ToArray();
    /// <summary>One start tag's attributes at a time: scratch per thread, so that an idle connection holds none.</summary>
    [ThreadStatic] private static RawAttribute[]? t_attributes;
    private byte[]? _headerName;
    private readonly List<Frame> _open = [];

    private readonly record struct Binding(string Prefix, string Namespace);
    private readonly record struct RawAttribute(int NameStart, int NameLength, int Colon, int ValueStart, int ValueLength);
    private readonly record struct Frame(Element Element, int NameStart, int NameLength, int ScopeMark);

    /// <summary>Forgets the stream header's bindings (stream restart).</summary>
    public void Reset()
    {
        _scope.RemoveRange(1, _scope.Count - 1);
        _rootScope = 1;
        _headerName = null;
    }

    /// <summary>The default namespace declared by the stream header, if any.</summary>
    public string? HeaderDefaultNamespace()
    {
        for (var i = _rootScope - 1; i >= 0; i--)
            if (_scope[i].Prefix.Length == 0) return _scope[i].Namespace;
        return null;
    }

    /// <summary>
    /// Checks <c>&lt;?xml ...?&gt;</c> (XML 1.0 §2.8): version, then optionally encoding (UTF-8 only), then
    /// optionally standalone ('yes' or 'no'), in that order and each once.
    /// </summary>
    public void ParseDeclaration(ReadOnlySpan<byte> s)
    {
        CheckCharacters(s);
        var pos = "<?xml"u8.Length;
        var count = 0;
        var next = 0; // 0: version expected, 1: encoding or standalone, 2: standalone, 3: nothing more
        while (true)
        {
            var spaced = SkipWhitespace(s, ref pos);
            if (s[pos..].StartsWith("?>"u8)) break;
            if (!spaced) throw NotWellFormed("expected whitespace in the XML declaration");
            var attribute = ReadAttribute(s, ref pos, ref count);
            var name = s.Slice(attribute.NameStart, attribute.NameLength);
            var value = s.Slice(attribute.ValueStart, attribute.ValueLength);
            if (next == 0)
            {
                if (!name.SequenceEqual("version"u8)) throw NotWellFormed("the XML declaration must start with the version");
                // VersionNum ::= '1.' [0-9]+; a 1.0 processor reads 1.x documents as 1.0 (XML 1.0 §2.8).
                if (value.Length < 3 || !value.StartsWith("1."u8) || value[2..].IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0)
                    throw NotWellFormed("unsupported XML version");
                next = 1;
            }
            else if (next == 1 && name.SequenceEqual("encoding"u8))
            {
                if (!Ascii.EqualsIgnoreCase(value, "UTF-8"u8))
                    throw new XmlStreamException(XmlErrorCondition.UnsupportedEncoding, "only UTF-8 is supported");
                next = 2;
            }
            else if (next <= 2 && name.SequenceEqual("standalone"u8))
            {
                if (!value.SequenceEqual("yes"u8) && !value.SequenceEqual("no"u8)) throw NotWellFormed("standalone must be 'yes' or 'no'");
                next = 3;
            }
            else
            {
                throw NotWellFormed("unknown, repeated or misplaced pseudo-attribute in the XML declaration");
            }
        }
        if (next == 0) throw NotWellFormed("the XML declaration has no version");
    }

    /// <summary>Parses the stream header's start tag; its namespace bindings stay in scope until <see cref="Reset"/>.</summary>
    public Element ParseHeader(ReadOnlySpan<byte> s)
    {
        CheckCharacters(s);
        var pos = 0;
        var header = ParseStartTag(s, ref pos, out var empty, out var nameStart, out var nameLength);
        if (empty || pos != s.Length) throw NotWellFormed("malformed stream header");
        var name = s.Slice(nameStart, nameLength);
        _headerName = name.SequenceEqual(StreamHeaderName) ? StreamHeaderName : name.ToArray();
        _rootScope = _scope.Count;
        return header;
    }

    /// <summary>Checks that a closing tag at stream level closes the stream header.</summary>
    public void ParseStreamClose(ReadOnlySpan<byte> s)
    {
        CheckCharacters(s);
        var pos = 2;
        var (nameStart, nameLength, _) = ReadName(s, ref pos);
        SkipWhitespace(s, ref pos);
        if (_headerName is null || !s.Slice(nameStart, nameLength).SequenceEqual(_headerName))
            throw NotWellFormed("closing tag does not match the stream header");
        if (pos != s.Length - 1) throw NotWellFormed("malformed closing tag");
    }

    /// <summary>Parses one complete element.</summary>
    public Element ParseElement(ReadOnlySpan<byte> s)
    {
        CheckCharacters(s);
        var pos = 0;
        var root = ParseStartTag(s, ref pos, out var empty, out var rootNameStart, out var rootNameLength, spareAttribute: true);
        if (empty)
        {
            _scope.RemoveRange(_rootScope, _scope.Count - _rootScope);
            if (pos != s.Length) throw NotWellFormed("unexpected data after the element");
            return root;
        }
        _open.Clear();
        _open.Add(new Frame(root, rootNameStart, rootNameLength, _rootScope));
        string? text = null;
        while (true)
        {
            var lt = s[pos..].IndexOf((byte)'<');
            if (lt < 0 || pos + lt + 1 >= s.Length) throw NotWellFormed("unclosed element");
            if (lt > 0) text = Append(text, Decode(s.Slice(pos, lt), TextKind.Content));
            pos += lt;
            var top = _open[^1];
            switch (s[pos + 1])
            {
                case (byte)'/':
                    if (text is not null) top.Element.AddTextInline(text);
                    text = null;
                    pos += 2;
                    var (nameStart, nameLength, _) = ReadName(s, ref pos);
                    if (!s.Slice(nameStart, nameLength).SequenceEqual(s.Slice(top.NameStart, top.NameLength)))
                        throw NotWellFormed("closing tag does not match the open element");
                    SkipWhitespace(s, ref pos);
                    Expect(s, ref pos, (byte)'>');
                    _scope.RemoveRange(top.ScopeMark, _scope.Count - top.ScopeMark);
                    _open.RemoveAt(_open.Count - 1);
                    if (_open.Count == 0)
                    {
                        if (pos != s.Length) throw NotWellFormed("unexpected data after the element");
                        return root;
                    }
                    break;
                case (byte)'!':
                    if (!s[pos..].StartsWith("<![CDATA["u8)) throw NotWellFormed("malformed CDATA section");
                    pos += "<![CDATA["u8.Length;
                    var end = s[pos..].IndexOf("]]>"u8);
                    if (end < 0) throw NotWellFormed("unclosed CDATA section");
                    text = Append(text, Decode(s.Slice(pos, end), TextKind.CData));
                    pos += end + 3;
                    break;
                default:
                    if (text is not null) top.Element.AddTextInline(text);
                    text = null;
                    var mark = _scope.Count;
                    var child = ParseStartTag(s, ref pos, out empty, out nameStart, out nameLength);
                    top.Element.Add(child);
                    if (empty) _scope.RemoveRange(mark, _scope.Count - mark);
                    else _open.Add(new Frame(child, nameStart, nameLength, mark));
                    break;
            }
        }
    }

    private static string Append(string? text, string more) => text is null ? more : text + more;

    /// <summary>
    /// Parses a start tag at <paramref name="pos"/> (on its '&lt;'), pushing its namespace declarations
    /// onto the scope; the caller pops them when the element closes.
    /// </summary>
    private Element ParseStartTag(ReadOnlySpan<byte> s, ref int pos, out bool empty, out int nameStart, out int nameLength, bool spareAttribute = false)
    {
        pos++;
        (nameStart, nameLength, var colon) = ReadName(s, ref pos);
        var attributes = t_attributes ??= new RawAttribute[8];
        var count = 0;
        while (true)
        {
            var spaced = SkipWhitespace(s, ref pos);
            var b = At(s, pos);
            if (b == '>')
            {
                pos++;
                empty = false;
                break;
            }
            if (b == '/')
            {
                pos++;
                Expect(s, ref pos, (byte)'>');
                empty = true;
                break;
            }
            if (!spaced) throw NotWellFormed("expected whitespace before an attribute");
            var attribute = ReadAttribute(s, ref pos, ref count);
            if (count > attributes.Length)
            {
                Array.Resize(ref attributes, attributes.Length * 2);
                t_attributes = attributes;
            }
            attributes[count - 1] = attribute;
        }

        var mark = _scope.Count;
        var declarations = 0;
        for (var i = 0; i < count; i++)
        {
            var a = attributes[i];
            var name = s.Slice(a.NameStart, a.NameLength);
            string prefix;
            if (name.SequenceEqual("xmlns"u8)) prefix = "";
            else if (a.Colon == 5 && name.StartsWith("xmlns:"u8)) prefix = NameTable.Get(name[6..]);
            else continue;
            declarations++;
            var ns = DecodeShared(s.Slice(a.ValueStart, a.ValueLength));
            if (prefix == "xmlns" || ns == XmlnsNamespace || (prefix == "xml") != (ns == XmlNamespace))
                throw NotWellFormed("reserved prefix or namespace");
            if (prefix.Length > 0 && ns.Length == 0) throw NotWellFormed("a prefix cannot be undeclared");
            for (var j = mark; j < _scope.Count; j++)
                if (_scope[j].Prefix == prefix) throw NotWellFormed("duplicate namespace declaration");
            _scope.Add(new Binding(prefix, ns));
        }

        var qname = s.Slice(nameStart, nameLength);
        // A stanza gets one slot more than it came with: the server stamps its 'from'.
        var capacity = count - declarations + (spareAttribute ? 1 : 0);
        var element = colon < 0
            ? new Element(NameTable.Get(qname), Lookup(""), capacity)
            : new Element(NameTable.Get(qname[(colon + 1)..]), Lookup(NameTable.Get(qname[..colon])), capacity);

        var added = 0;
        for (var i = 0; i < count; i++)
        {
            var a = attributes[i];
            var raw = s.Slice(a.NameStart, a.NameLength);
            if (raw.SequenceEqual("xmlns"u8) || (a.Colon == 5 && raw.StartsWith("xmlns:"u8))) continue;
            string name;
            if (a.Colon < 0 || (a.Colon == 3 && raw.StartsWith("xml:"u8))) name = NameTable.Get(raw);
            else name = "{" + Lookup(NameTable.Get(raw[..a.Colon])) + "}" + NameTable.Get(raw[(a.Colon + 1)..]);
            if (element.HasAttributeBefore(added, name)) throw NotWellFormed("duplicate attribute " + name);
            var bytes = s.Slice(a.ValueStart, a.ValueLength);
            // Values from small closed sets recur in every stanza, and a client writes to the same few addresses
            // again and again: share their strings like names.
            var value = name is "type" or "xml:lang" or "to" or "from" ? DecodeShared(bytes) : Decode(bytes, TextKind.Attribute);
            element.SetParsedAttribute(added++, name, value);
        }
        return element;
    }

    private string Lookup(string prefix)
    {
        for (var i = _scope.Count - 1; i >= 0; i--)
            if (_scope[i].Prefix == prefix) return _scope[i].Namespace;
        if (prefix.Length == 0) return "";
        if (prefix == "xmlns") throw NotWellFormed("elements cannot have the prefix xmlns");
        throw NotWellFormed("undeclared namespace prefix " + prefix);
    }

    /// <summary>Reads <c>name = 'value'</c> at <paramref name="pos"/>.</summary>
    private RawAttribute ReadAttribute(ReadOnlySpan<byte> s, ref int pos, ref int count)
    {
        var (nameStart, nameLength, colon) = ReadName(s, ref pos);
        SkipWhitespace(s, ref pos);
        Expect(s, ref pos, (byte)'=');
        SkipWhitespace(s, ref pos);
        var quote = At(s, pos);
        if (quote is not ((byte)'\'' or (byte)'"')) throw NotWellFormed("attribute value must be quoted");
        pos++;
        var length = s[pos..].IndexOf(quote);
        if (length < 0) throw NotWellFormed("unterminated attribute value");
        var value = s.Slice(pos, length);
        if (value.Contains((byte)'<')) throw NotWellFormed("'<' in an attribute value");
        if (length > limits.MaxAttributeBytes) throw Policy("attribute value too long");
        if (++count > limits.MaxAttributes) throw Policy("too many attributes");
        pos += length + 1;
        return new RawAttribute(nameStart, nameLength, colon, pos - length - 1, length);
    }

    /// <summary>Reads a qualified name: NCName or NCName ':' NCName.</summary>
    private (int Start, int Length, int Colon) ReadName(ReadOnlySpan<byte> s, ref int pos)
    {
        var start = pos;
        var length = s[pos..].IndexOfAnyExcept(NameBytes);
        if (length < 0) length = s.Length - pos;
        var name = s.Slice(pos, length);
        if (length == 0 || !IsNameStart(name[0])) throw NotWellFormed("invalid name");
        if (length > limits.MaxNameBytes) throw Policy("name too long");
        var colon = name.IndexOf((byte)':');
        if (colon >= 0 && (colon == 0 || colon == length - 1 || !IsNameStart(name[colon + 1]) || name[(colon + 1)..].Contains((byte)':')))
            throw NotWellFormed("invalid qualified name");
        if (name.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0) CheckNonAsciiName(name);
        pos += length;
        return (start, length, colon);
    }

    /// <summary>
    /// Checks a name holding non-ASCII characters against XML 1.0 5th edition §2.3 (the edition RFC 6120 cites):
    /// NameStartChar first and after the colon, NameChar elsewhere. Only names with non-ASCII bytes get here, so
    /// the common case costs one vectorized search. The token is valid UTF-8 by then (CheckCharacters).
    /// </summary>
    private static void CheckNonAsciiName(ReadOnlySpan<byte> name)
    {
        var start = true;
        while (!name.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(name, out var rune, out var used) != OperationStatus.Done) throw NotWellFormed("invalid UTF-8");
            var c = rune.Value;
            if (!(start ? IsNameStartChar(c) : IsNameStartChar(c) || c is '-' or '.' or 0xB7 or (>= '0' and <= '9') or (>= 0x300 and <= 0x36F) or (>= 0x203F and <= 0x2040)))
                throw NotWellFormed($"character U+{c:X4} is not allowed {(start ? "at the start of" : "in")} a name");
            start = c == ':';
            name = name[used..];
        }
    }

    private static bool IsNameStartChar(int c) =>
        c is ':' or '_' or (>= 'A' and <= 'Z') or (>= 'a' and <= 'z')
            or (>= 0xC0 and <= 0xD6) or (>= 0xD8 and <= 0xF6) or (>= 0xF8 and <= 0x2FF) or (>= 0x370 and <= 0x37D) or (>= 0x37F and <= 0x1FFF)
            or (>= 0x200C and <= 0x200D) or (>= 0x2070 and <= 0x218F) or (>= 0x2C00 and <= 0x2FEF)
            or (>= 0x3001 and <= 0xD7FF) or (>= 0xF900 and <= 0xFDCF) or (>= 0xFDF0 and <= 0xFFFD) or (>= 0x10000 and <= 0xEFFFF);

    private static bool IsNameStart(byte b) => b is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or (byte)'_' or >= 0x80;

    private static bool SkipWhitespace(ReadOnlySpan<byte> s, ref int pos)
    {
        var start = pos;
        while (pos < s.Length && s[pos] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') pos++;
        return pos > start;
    }

    private static byte At(ReadOnlySpan<byte> s, int pos) =>
        pos < s.Length ? s[pos] : throw NotWellFormed("unexpected end of tag");

    private static void Expect(ReadOnlySpan<byte> s, ref int pos, byte expected)
    {
        if (At(s, pos) != expected) throw NotWellFormed($"expected '{(char)expected}'");
        pos++;
    }

    /// <summary>Rejects invalid UTF-8 and characters XML 1.0 does not allow, once for the whole token.</summary>
    private static void CheckCharacters(ReadOnlySpan<byte> s)
    {
        if (s.IndexOfAnyExcept(PlainAscii) < 0) return;
        if (s.IndexOfAny(ForbiddenControls) >= 0) throw NotWellFormed("character not allowed in XML");
        if (!Utf8.IsValid(s)) throw NotWellFormed("invalid UTF-8");
        if (s.IndexOf("\uFFFE"u8) >= 0 || s.IndexOf("\uFFFF"u8) >= 0) throw NotWellFormed("character not allowed in XML");
    }

    private static string Decode(ReadOnlySpan<byte> raw, TextKind kind)
    {
        if (kind == TextKind.Content && raw.IndexOf("]]>"u8) >= 0) throw NotWellFormed("']]>' in character data");
        var specials = kind switch
        {
            TextKind.Content => ContentSpecials,
            TextKind.Attribute => AttributeSpecials,
            _ => CDataSpecials,
        };
        if (raw.IndexOfAny(specials) < 0) return Encoding.UTF8.GetString(raw);

        // Decoded text is never longer in UTF-16 code units than its UTF-8 bytes.
        char[]? rented = null;
        Span<char> chars = raw.Length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(raw.Length));
        var n = 0;
        while (true)
        {
            var next = raw.IndexOfAny(specials);
            if (next < 0)
            {
                n += Encoding.UTF8.GetChars(raw, chars[n..]);
                break;
            }
            n += Encoding.UTF8.GetChars(raw[..next], chars[n..]);
            var b = raw[next];
            raw = raw[(next + 1)..];
            switch (b)
            {
                case (byte)'&':
                    n += DecodeReference(ref raw, chars[n..]);
                    break;
                case (byte)'\r':
                    chars[n++] = kind == TextKind.Attribute ? ' ' : '\n';
                    if (!raw.IsEmpty && raw[0] == '\n') raw = raw[1..];
                    break;
                default:
                    chars[n++] = ' ';
                    break;
            }
        }
        var result = new string(chars[..n]);
        if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        return result;
    }

    /// <summary>An attribute value through the name table, for namespaces and values from small closed sets.</summary>
    private string DecodeShared(ReadOnlySpan<byte> raw) =>
        raw.IndexOfAny(AttributeSpecials) < 0 ? NameTable.Get(raw) : Decode(raw, TextKind.Attribute);

    /// <summary>Decodes the reference after a '&amp;' up to its ';' into <paramref name="output"/>.</summary>
    private static int DecodeReference(ref ReadOnlySpan<byte> raw, scoped Span<char> output)
    {
        var semicolon = raw.IndexOf((byte)';');
        if (semicolon <= 0) throw NotWellFormed("'&' must start a reference");
        var name = raw[..semicolon];
        raw = raw[(semicolon + 1)..];
        if (name[0] == '#')
        {
            var hex = name.Length > 1 && name[1] == 'x';
            var digits = name[(hex ? 2 : 1)..];
            if (digits.IsEmpty) throw NotWellFormed("empty character reference");
            var value = 0;
            foreach (var d in digits)
            {
                var digit = d switch
                {
                    >= (byte)'0' and <= (byte)'9' => d - '0',
                    >= (byte)'a' and <= (byte)'f' when hex => d - 'a' + 10,
                    >= (byte)'A' and <= (byte)'F' when hex => d - 'A' + 10,
                    _ => throw NotWellFormed("invalid character reference"),
                };
                value = value * (hex ? 16 : 10) + digit;
                if (value > 0x10FFFF) throw NotWellFormed("character reference out of range");
            }
            if (!IsXmlChar(value)) throw NotWellFormed("character reference to a character not allowed in XML");
            return new Rune(value).EncodeToUtf16(output);
        }
        output[0] = name switch
        {
            _ when name.SequenceEqual("lt"u8) => '<',
            _ when name.SequenceEqual("gt"u8) => '>',
            _ when name.SequenceEqual("amp"u8) => '&',
            _ when name.SequenceEqual("quot"u8) => '"',
            _ when name.SequenceEqual("apos"u8) => '\'',
            _ when IsNameStart(name[0]) && name.IndexOfAnyExcept(NameBytes) < 0 =>
                throw new XmlStreamException(XmlErrorCondition.RestrictedXml, "only the predefined entities are allowed"),
            _ => throw NotWellFormed("invalid entity reference"),
        };
        return 1;
    }

    private static bool IsXmlChar(int c) =>
        c is 0x9 or 0xA or 0xD or (>= 0x20 and <= 0xD7FF) or (>= 0xE000 and <= 0xFFFD) or (>= 0x10000 and <= 0x10FFFF);

    public static XmlStreamException NotWellFormed(string message) => new(XmlErrorCondition.NotWellFormed, message);

    public static XmlStreamException Policy(string message) => new(XmlErrorCondition.PolicyViolation, message);
}
