using System.Text;

namespace Candor.Fuzz;

/// <summary>
/// Random XML-ish documents for the differential check: mostly well-formed elements with attributes, namespace
/// declarations and prefixes, references, CDATA and mixed text, salted with what XMPP refuses or what is easy to
/// get wrong (comments, PIs, DTDs, undeclared and reserved prefixes, duplicate attributes, bad references,
/// mismatched tags, names with non-ASCII characters, declarations, stray bytes, invalid and overlong UTF-8).
/// Seeded, so a failing document is reproduced from its seed.
/// </summary>
public sealed class XmlishGenerator(int seed)
{
    private readonly Random _random = new(seed);

    private static readonly string[] LocalNames = ["a", "b", "message", "body", "x", "iq", "query", "item", "_u", "n-1", "n.2", "é", "名前", "aé·", "a\u0300", "Ω"];
    private static readonly string[] BadNames = ["1a", "-a", ".a", "a×", "\u0300a", "a\u037E", "a\u00AD", "a\uF900", "a\U00010000", "a\u2070", "a b", ":a", "a:", "a:b:c", "xmlns:a", ""];
    private static readonly string[] Prefixes = ["p", "q", "stream", "xml", "xmlns", "undeclared"];
    private static readonly string[] Namespaces = ["urn:a", "urn:b", "jabber:client", "http://etherx.jabber.org/streams", "", "http://www.w3.org/XML/1998/namespace", "http://www.w3.org/2000/xmlns/", "urn:a&amp;b"];
    private static readonly string[] TextPieces =
    [
        "hello", " ", "\n", "\r\n", "\r", "\t", "&lt;", "&gt;", "&amp;", "&quot;", "&apos;", "&#65;", "&#x42;", "&#x1F600;", "&#0;", "&#xD800;",
        "&#x110000;", "&#X41;", "&#;", "&#x;", "&lol;", "&", "&amp", "<", ">", "]]>", "]]", "'", "\"", "é", "😀", "\u0085", "\u2028", "\u007F",
        "\u0001", "\uFFFE", "&#9;", "&#10;", "&#13;",
    ];

    private int Next(int max) => _random.Next(max);
    private bool Chance(double p) => _random.NextDouble() < p;
    private T Pick<T>(T[] items) => items[Next(items.Length)];

    public byte[] Document()
    {
        var sb = new StringBuilder();
        if (Chance(0.05)) sb.Append(Pick([" ", "\n", "\t"]));
        if (Chance(0.3)) sb.Append(Declaration());
        if (Chance(0.05)) sb.Append(Pick(["<!DOCTYPE a>", "<!DOCTYPE a [<!ENTITY x 'y'>]>", "<!-- c -->", "<?pi x?>", "\n"]));
        var scope = new List<string> { "xml" };
        Element(sb, 0, scope);
        if (Chance(0.1)) sb.Append(Pick(["\n", " ", "<!-- c -->", "<?pi?>", "<b/>", "text", "</a>", "<", "&amp;"]));
        var bytes = Encoding.UTF8.GetBytes(sb.ToString());
        return Chance(0.15) ? Mutate(bytes) : bytes;
    }

    private string Declaration() => Next(12) switch
    {
        0 => "<?xml version='1.1'?>",
        1 => "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        2 => "<?xml version='1.0' standalone='maybe'?>",
        3 => "<?xml encoding='UTF-8' version='1.0'?>",
        4 => "<?xml version='1.0' encoding='utf-8' standalone='yes'?>",
        5 => "<?xml?>",
        6 => "<?xml version='2.0'?>",
        7 => "<?xml version='1.0' version='1.0'?>",
        8 => "<?xml version = '1.0' ?>",
        9 => "<?xmlversion='1.0'?>",
        10 => "<?xml version='1.0' standalone='no' encoding='UTF-8'?>",
        _ => "<?xml version='1.0' encoding='UTF-8'?>",
    };

    private string Name(List<string> scope, bool attribute)
    {
        if (Chance(0.03)) return Pick(BadNames);
        var local = Chance(0.8) ? Pick(LocalNames[..7]) : Pick(LocalNames);
        if (!Chance(attribute ? 0.25 : 0.2)) return local;
        var prefix = Chance(0.85) && scope.Count > 0 ? scope[Next(scope.Count)] : Pick(Prefixes);
        return prefix + ":" + local;
    }

    private void Element(StringBuilder sb, int depth, List<string> inherited)
    {
        var scope = new List<string>(inherited);
        var attributes = new StringBuilder();
        var count = Next(4);
        for (var i = 0; i < count; i++)
        {
            string name;
            if (Chance(0.35))
            {
                var prefix = Chance(0.3) ? "" : Chance(0.9) ? Pick(["p", "q", "r"]) : Pick(Prefixes);
                name = prefix.Length == 0 ? "xmlns" : "xmlns:" + prefix;
                if (prefix.Length > 0) scope.Add(prefix);
            }
            else
            {
                name = Name(scope, attribute: true);
            }
            var value = name.StartsWith("xmlns", StringComparison.Ordinal) ? Pick(Namespaces) : AttributeValue();
            var quote = Chance(0.5) ? '\'' : '"';
            attributes.Append(Chance(0.95) ? Pick([" ", "\n", "\t", "  "]) : "")
                .Append(name).Append(Chance(0.1) ? " = " : "=").Append(quote).Append(value.Replace(quote.ToString(), Chance(0.9) ? "" : quote.ToString())).Append(quote);
            if (Chance(0.03)) attributes.Append(' ').Append(name).Append("='dup'");
        }
        var elementName = Name(scope, attribute: false);
        sb.Append('<').Append(elementName).Append(attributes);
        if (Chance(0.05)) sb.Append(' ');
        if (depth > 4 || Chance(0.3))
        {
            sb.Append(Chance(0.98) ? "/>" : "/ >");
            return;
        }
        sb.Append('>');
        var children = Next(5);
        for (var i = 0; i < children; i++)
        {
            switch (Next(10))
            {
                case < 4:
                    sb.Append(Text());
                    break;
                case < 7:
                    Element(sb, depth + 1, scope);
                    break;
                case 7:
                    sb.Append("<![CDATA[").Append(Text().Replace("]]>", Chance(0.9) ? "" : "]]>")).Append("]]>");
                    break;
                case 8:
                    if (Chance(0.5)) sb.Append(Pick(["<!-- comment -->", "<?pi data?>", "<!DOCTYPE x>", "<![CDATA[", "<!x>", "<?xml version='1.0'?>"]));
                    else sb.Append(Pick(["&#x20;", "&amp;amp;", "\u00A0"]));
                    break;
                default:
                    sb.Append(Pick(["\n  ", " ", "\r\n"]));
                    break;
            }
        }
        var close = Chance(0.97) ? elementName : Name(scope, attribute: false);
        sb.Append("</").Append(close).Append(Chance(0.1) ? " >" : ">");
    }

    private string AttributeValue()
    {
        var sb = new StringBuilder();
        var n = Next(4);
        for (var i = 0; i < n; i++) sb.Append(Chance(0.6) ? Pick(["v", "1", "chat", "en", "a b", ""]) : Pick(TextPieces));
        return sb.ToString().Replace("<", Chance(0.9) ? "" : "<");
    }

    private string Text()
    {
        var sb = new StringBuilder();
        var n = 1 + Next(4);
        for (var i = 0; i < n; i++)
        {
            var piece = Pick(TextPieces);
            if (piece is "<" or "&" or "&amp" && Chance(0.85)) piece = "x";
            sb.Append(piece);
        }
        return sb.ToString();
    }

    private static readonly byte[][] BadUtf8 =
    [
        [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xF0, 0x80, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFE], [0xFF], [0x80], [0xBF], [0xC3], [0xE2, 0x82], [0xEF, 0xBB, 0xBF], [0x00],
    ];

    /// <summary>One byte-level damage: a byte changed, dropped or inserted, the end cut, or an invalid UTF-8 sequence spliced in.</summary>
    private byte[] Mutate(byte[] bytes)
    {
        var list = new List<byte>(bytes);
        var at = list.Count == 0 ? 0 : Next(list.Count);
        switch (Next(5))
        {
            case 0 when list.Count > 0:
                list[at] = (byte)Next(256);
                break;
            case 1 when list.Count > 0:
                list.RemoveAt(at);
                break;
            case 2:
                list.Insert(at, Pick("<>&;'\"/=!?[]: \u00e9"u8.ToArray()));
                break;
            case 3 when list.Count > 1:
                list.RemoveRange(at, list.Count - at);
                break;
            default:
                list.InsertRange(at, Pick(BadUtf8));
                break;
        }
        return [.. list];
    }
}
