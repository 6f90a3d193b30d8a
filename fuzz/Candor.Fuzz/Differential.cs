using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using Candor.Xml;

namespace Candor.Fuzz;

/// <summary>
/// Differential check of <see cref="XmppStreamParser"/> (fragment mode: one element, as in a WebSocket frame)
/// against <see cref="XmlReader"/> with namespaces on and DTD processing prohibited. Comments and processing
/// instructions, which XMPP forbids (RFC 6120 §11.1), count as refusals on the System.Xml side. Both must agree on
/// accept or refuse and, when both accept, on the element tree: names, namespaces, attributes in order with their
/// normalized values, and text (adjacent text and CDATA merged). When both refuse, they must also agree on *when*:
/// each is fed one byte (one character for System.Xml) at a time, and the point where each raises its error is
/// compared (<see cref="CheckTiming"/>).
/// </summary>
/// <remarks>
/// Intended differences, each checked to be exactly that (<see cref="KnownDifference"/>):
/// <list type="number">
/// <item>An XML declaration naming another encoding than UTF-8: XMPP is UTF-8 only (RFC 6120 §11.6), so Candor
/// refuses it with unsupported-encoding; System.Xml (reading already decoded text) accepts it.</item>
/// <item>XML version 1.x other than 1.0: XML 1.0 (5th edition) §2.8 says a 1.0 processor should accept 1.x
/// documents as 1.0, and Candor does; System.Xml refuses them.</item>
/// <item>Whitespace before the XML declaration: Candor skips it, as it skips whitespace between stanzas;
/// System.Xml refuses it.</item>
/// <item>Name characters: Candor follows XML 1.0 5th edition (cited by RFC 6120), System.Xml the 4th edition's
/// Appendix B tables, so names with characters only the 5th edition allows (U+F900, U+10000, ...) are accepted by
/// Candor alone.</item>
/// <item><c>xml:space</c> with a value other than <c>default</c> or <c>preserve</c>: a validity constraint that
/// System.Xml enforces and Candor, a non-validating parser, does not.</item>
/// <item>An element with the prefix <c>xmlns</c>: Namespaces in XML 1.0 §3 says element names must not have it, and
/// Candor refuses it; System.Xml accepts it, in the xmlns namespace.</item>
/// <item>Malformed version numbers: Candor refuses anything but VersionNum ('1.' [0-9]+); System.Xml lets some
/// through ("1.0:").</item>
/// <item>Limits: none in the differential (all set to the maximum); they are tested on their own.</item>
/// </list>
/// Invalid UTF-8 is decided once, before either parser: such input must be refused by Candor (System.Xml reads
/// the strictly decoded text, and a conformant processor must reject undecodable bytes).
/// <para>
/// Timing. System.Xml checks everything as it reads. Candor's scanner delimits each top-level element and raises
/// what it can see on the way (restricted constructs, '&lt;' in the wrong place, mismatched end tags, limits); the
/// tree builder checks the rest (characters, names, attributes, namespaces, references) once the element is complete.
/// So the errors the scanner can see, an end tag that does not match its start tag and a '&lt;' in an attribute
/// value, must be refused by Candor no later than the end of the tag System.Xml refused them in; any other error may
/// wait for the end of the element (or meet a scanner error first), and Candor may always refuse earlier (a comment
/// at its "&lt;!-", say).
/// </para>
/// </remarks>
public static class Differential
{
    private static readonly XmlLimits NoLimits = new()
    {
        MaxStanzaBytes = int.MaxValue, MaxDepth = int.MaxValue, MaxAttributes = int.MaxValue,
        MaxAttributeBytes = int.MaxValue, MaxNameBytes = int.MaxValue, MaxHeaderBytes = int.MaxValue,
    };

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public sealed record Outcome(bool Accepted, string Detail);

    /// <summary>Throws <see cref="FuzzFinding"/> when the two parsers disagree beyond the intended differences.</summary>
    public static void Check(byte[] data)
    {
        var ours = Candor(data);
        var theirs = SystemXml(data);
        if (ours.Accepted == theirs.Accepted && ours.Detail == theirs.Detail) return;
        if (!ours.Accepted && !theirs.Accepted)
        {
            CheckTiming(data, theirs);
            return;
        }
        if (KnownDifference(data, ours, theirs)) return;
        throw new FuzzFinding($"parsers disagree on {Show(data)}\n  Candor:     {ours.Detail}\n  System.Xml: {theirs.Detail}");
    }

    public static string Show(byte[] data)
    {
        try
        {
            return "\"" + StrictUtf8.GetString(data).Replace("\r", "\\r").Replace("\n", "\\n") + "\"";
        }
        catch (DecoderFallbackException)
        {
            return Convert.ToHexString(data);
        }
    }

    /// <summary>System.Xml's words for the errors Candor's scanner must see as they arrive.</summary>
    private static readonly Regex ScannerErrorPattern = new(@"does not match the end tag|Unexpected end tag|'<', hexadecimal value 0x3C, is an invalid attribute character", RegexOptions.CultureInvariant);

    /// <summary>Both refused: throws <see cref="FuzzFinding"/> when Candor noticed later than its design allows (see remarks).</summary>
    public static void CheckTiming(byte[] data, Outcome theirs)
    {
        var ours = CandorErrorAt(data);
        var their = SystemXmlErrorAt(data);
        if (ours <= their || !ScannerErrorPattern.IsMatch(theirs.Detail)) return;
        var gt = Array.IndexOf(data, (byte)'>', Math.Max(0, their - 1));
        if (ours <= (gt < 0 ? data.Length : gt + 1)) return;
        throw new FuzzFinding($"Candor refused at byte {ours}, System.Xml at {their} (the end of that tag is byte {gt + 1}), in {Show(data)}: {theirs.Detail}");
    }

    /// <summary>How many bytes Candor had been given, one at a time, when it refused; the length when only the end showed it.</summary>
    public static int CandorErrorAt(byte[] data)
    {
        var parser = new XmppStreamParser(NoLimits, fragmentMode: true);
        var start = 0;
        var elements = 0;
        for (var arrived = 1; arrived <= data.Length; arrived++)
        {
            try
            {
                while (true)
                {
                    var buffer = new ReadOnlySequence<byte>(data, start, arrived - start);
                    var ev = parser.Read(buffer, out var consumed, out _);
                    start += (int)buffer.Slice(buffer.Start, consumed).Length;
                    if (ev == XmlEvent.None) break;
                    if (++elements > 1) return arrived;
                }
            }
            catch (XmlStreamException)
            {
                return arrived;
            }
        }
        return data.Length;
    }

    /// <summary>Our parser in fragment mode: accepted when the input is exactly one element (and whitespace).</summary>
    public static Outcome Candor(byte[] data)
    {
        var parser = new XmppStreamParser(NoLimits, fragmentMode: true);
        var rest = new ReadOnlySequence<byte>(data);
        Element? found = null;
        try
        {
            while (true)
            {
                var ev = parser.Read(rest, out var consumed, out var element);
                var advanced = !consumed.Equals(rest.Start);
                rest = rest.Slice(consumed);
                if (ev == XmlEvent.Element)
                {
                    if (found is not null) return new(false, "more than one element");
                    found = element;
                }
                else if (ev == XmlEvent.None && (!advanced || rest.IsEmpty))
                {
                    break;
                }
            }
        }
        catch (XmlStreamException e)
        {
            return new(false, $"refused {e.Condition}: {e.Message}");
        }
        if (!rest.IsEmpty) return new(false, "incomplete");
        if (found is null) return new(false, "no element");
        return new(true, Targets.Dump(found));
    }

    /// <summary>System.Xml's reading of the same bytes, as the same kind of tree.</summary>
    public static Outcome SystemXml(byte[] data) =>
        Decode(data) is { } text ? SystemXml(new StringReader(text)) : new(false, "invalid UTF-8");

    /// <summary>
    /// How many bytes System.Xml had read, given one character at a time, when it refused (at the first invalid byte
    /// for invalid UTF-8); the length when it accepted.
    /// </summary>
    public static int SystemXmlErrorAt(byte[] data)
    {
        if (Decode(data) is not { } text)
        {
            System.Text.Unicode.Utf8.ToUtf16(data, new char[data.Length], out var valid, out _, replaceInvalidSequences: false);
            return valid + 1;
        }
        var trickle = new TrickleReader(text);
        return SystemXml(trickle).Accepted ? data.Length : Encoding.UTF8.GetByteCount(text.AsSpan(0, trickle.Position));
    }

    private static string? Decode(byte[] data)
    {
        try
        {
            return StrictUtf8.GetString(data);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    /// <summary>Hands out one character per read, so that what was read when an error came is what the reader needed to see it.</summary>
    private sealed class TrickleReader(string text) : TextReader
    {
        public int Position { get; private set; }
        public override int Peek() => Position < text.Length ? text[Position] : -1;
        public override int Read() => Position < text.Length ? text[Position++] : -1;
        public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

        public override int Read(Span<char> buffer)
        {
            if (buffer.IsEmpty || Position >= text.Length) return 0;
            buffer[0] = text[Position++];
            return 1;
        }
    }

    private static Outcome SystemXml(TextReader input)
    {
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            IgnoreComments = false,
            IgnoreProcessingInstructions = false,
            IgnoreWhitespace = false,
            CheckCharacters = true,
            ConformanceLevel = ConformanceLevel.Document,
        };
        try
        {
            using var reader = XmlReader.Create(input, settings);
            var stack = new Stack<Element>();
            Element? root = null;
            StringBuilder? pending = null;
            void FlushText()
            {
                if (pending is null) return;
                stack.Peek().Add(new TextNode(pending.ToString()));
                pending = null;
            }
            while (reader.Read())
            {
                switch (reader.NodeType)
                {
                    case XmlNodeType.Element:
                        if (stack.Count > 0) FlushText();
                        var element = new Element(reader.LocalName, reader.NamespaceURI);
                        var empty = reader.IsEmptyElement;
                        if (reader.MoveToFirstAttribute())
                        {
                            do
                            {
                                if (reader.NamespaceURI == "http://www.w3.org/2000/xmlns/") continue;
                                var name = reader.NamespaceURI.Length == 0 ? reader.LocalName
                                    : reader.NamespaceURI == "http://www.w3.org/XML/1998/namespace" ? "xml:" + reader.LocalName
                                    : "{" + reader.NamespaceURI + "}" + reader.LocalName;
                                element.SetAttribute(name, reader.Value);
                            }
                            while (reader.MoveToNextAttribute());
                            reader.MoveToElement();
                        }
                        if (stack.Count > 0) stack.Peek().Add(element);
                        else root = element;
                        if (!empty) stack.Push(element);
                        break;
                    case XmlNodeType.EndElement:
                        FlushText();
                        stack.Pop();
                        break;
                    case XmlNodeType.Text:
                    case XmlNodeType.CDATA:
                    case XmlNodeType.Whitespace:
                    case XmlNodeType.SignificantWhitespace:
                        if (stack.Count > 0) (pending ??= new StringBuilder()).Append(reader.Value);
                        break;
                    case XmlNodeType.Comment:
                        return new(false, "comment");
                    case XmlNodeType.ProcessingInstruction:
                        return new(false, "processing instruction");
                    case XmlNodeType.XmlDeclaration:
                        break;
                    default:
                        return new(false, "node " + reader.NodeType);
                }
            }
            return root is null ? new(false, "no element") : new(true, Targets.Dump(root));
        }
        catch (XmlException e)
        {
            return new(false, "refused: " + e.Message);
        }
    }

    private static readonly Regex DeclarationPattern = new(@"^[ \t\r\n]*<\?xml[ \t\r\n]([^?]|\?[^>])*\?>", RegexOptions.CultureInvariant);
    private static readonly Regex EncodingPattern = new(@"encoding[ \t\r\n]*=[ \t\r\n]*(['""])([^'""]*)\1", RegexOptions.CultureInvariant);
    private static readonly Regex VersionPattern = new(@"^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(['""])1\.[0-9]+\1", RegexOptions.CultureInvariant);
    private static readonly Regex UnexpectedTokenPattern = new(@"^refused: '(.+?)' is an unexpected token", RegexOptions.CultureInvariant);
    private static readonly Regex NameCharPattern = new(@"hexadecimal value 0x([0-9A-F]+)", RegexOptions.CultureInvariant);

    /// <summary>True when the disagreement is one of the intended differences listed on the class.</summary>
    public static bool KnownDifference(byte[] data, Outcome ours, Outcome theirs, int depth = 0)
    {
        if (depth > 8) return false;
        var text = Encoding.UTF8.GetString(data);
        var declaration = DeclarationPattern.Match(text);
        if (theirs.Accepted && !ours.Accepted)
        {
            // 6. an element with the prefix xmlns, which System.Xml binds to the xmlns namespace.
            if (ours.Detail.EndsWith("elements cannot have the prefix xmlns", StringComparison.Ordinal))
                return text.Contains("<xmlns:", StringComparison.Ordinal);
            // 7. a version that is not VersionNum ('1.' [0-9]+), which System.Xml lets through in some forms ("1.0:").
            if (ours.Detail.EndsWith("unsupported XML version", StringComparison.Ordinal))
                return declaration.Success && !VersionPattern.IsMatch(declaration.Value.TrimStart(' ', '\t', '\r', '\n'));
            // 1. another encoding declared: refused by Candor only.
            return declaration.Success && ours.Detail.StartsWith("refused UnsupportedEncoding", StringComparison.Ordinal)
                && EncodingPattern.Match(declaration.Value) is { Success: true } enc
                && !enc.Groups[2].Value.Equals("UTF-8", StringComparison.OrdinalIgnoreCase);
        }
        if (!ours.Accepted || theirs.Accepted) return false;
        var message = theirs.Detail;
        // 2. version 1.x: the same document declared 1.0 must agree.
        var trimmed = declaration.Success ? declaration.Value.TrimStart(' ', '\t', '\r', '\n') : "";
        if (message.Contains("Version number", StringComparison.Ordinal) && VersionPattern.Match(trimmed) is { Success: true } version)
            return Recheck(text.Replace(version.Value, "<?xml version='1.0'", StringComparison.Ordinal), depth);
        // 3. whitespace before the declaration: the same document without it must agree.
        if (message.Contains("Unexpected XML declaration", StringComparison.Ordinal) && declaration.Success && declaration.Value[0] != '<')
            return Recheck(text.TrimStart(' ', '\t', '\r', '\n'), depth);
        // 4. a name character of the 5th edition only: the same document with it replaced by 'x' must agree.
        if (NameCharPattern.Match(message) is { Success: true } hex)
        {
            var c = int.Parse(hex.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var allowed = message.Contains("cannot begin with", StringComparison.Ordinal) ? IsFifthEditionNameStartChar(c)
                : message.Contains("cannot be included in a name", StringComparison.Ordinal) && IsFifthEditionNameChar(c);
            return c >= 0x80 && allowed && Recheck(text.Replace(char.ConvertFromUtf32(c), "x", StringComparison.Ordinal), depth);
        }
        // 4b. the same in an attribute name, where System.Xml words it as an unexpected token.
        // (System.Xml quotes only the first UTF-16 unit of a supplementary character, so take every such character.)
        if (UnexpectedTokenPattern.Match(message) is { Success: true } token)
        {
            var first = token.Groups[1].Value[0];
            var suspects = text.EnumerateRunes().Where(r => r.Value >= 0x80 && r.ToString()[0] == first && IsFifthEditionNameChar(r.Value)).Distinct().ToList();
            if (suspects.Count == 0) return false;
            return Recheck(suspects.Aggregate(text, (t, r) => t.Replace(r.ToString(), "x", StringComparison.Ordinal)), depth);
        }
        // 5. xml:space values.
        if (message.Contains("xml:space", StringComparison.Ordinal) && text.Contains("xml:space", StringComparison.Ordinal))
            return Recheck(Regex.Replace(text, @"xml:space([ \t\r\n]*=[ \t\r\n]*)(['""])[^'""]*\2", "xml:space$1$2default$2"), depth);
        return false;
    }

    /// <summary>The document with one intended difference taken out: both parsers must now agree (up to the other differences).</summary>
    private static bool Recheck(string adjusted, int depth)
    {
        var data = Encoding.UTF8.GetBytes(adjusted);
        var (ours, theirs) = (Candor(data), SystemXml(data));
        if (ours.Accepted == theirs.Accepted && (!ours.Accepted || ours.Detail == theirs.Detail)) return true;
        return KnownDifference(data, ours, theirs, depth + 1);
    }

    /// <summary>NameStartChar of XML 1.0 5th edition §2.3.</summary>
    public static bool IsFifthEditionNameStartChar(int c) =>
        c is ':' or '_' or (>= 'A' and <= 'Z') or (>= 'a' and <= 'z')
            or (>= 0xC0 and <= 0xD6) or (>= 0xD8 and <= 0xF6) or (>= 0xF8 and <= 0x2FF) or (>= 0x370 and <= 0x37D) or (>= 0x37F and <= 0x1FFF)
            or (>= 0x200C and <= 0x200D) or (>= 0x2070 and <= 0x218F) or (>= 0x2C00 and <= 0x2FEF)
            or (>= 0x3001 and <= 0xD7FF) or (>= 0xF900 and <= 0xFDCF) or (>= 0xFDF0 and <= 0xFFFD) or (>= 0x10000 and <= 0xEFFFF);

    /// <summary>NameChar of XML 1.0 5th edition §2.3 (NameStartChar included).</summary>
    public static bool IsFifthEditionNameChar(int c) =>
        IsFifthEditionNameStartChar(c) || c is '-' or '.' or 0xB7 or (>= '0' and <= '9') or (>= 0x300 and <= 0x36F) or (>= 0x203F and <= 0x2040);
}
