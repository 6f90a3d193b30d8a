using Candor.Server.Modules.Policy;

namespace Candor.Server.Tests.Policy;

/// <summary>What rules see: NFKC, format characters removed, full case folding; and the compact form.</summary>
public sealed class NormalizationTests
{
    [Theory]
    // Latin
    [InlineData("Buy NOW", "buy now")]
    [InlineData("ＢＵＹ　ＮＯＷ", "buy now")]            // full-width letters and ideographic space
    [InlineData("b\u200Bu\u200Cy\u200D n\u2060o\uFEFFw", "buy now")] // zero-width space, joiners, word joiner, BOM
    [InlineData("fre\u00ADe", "free")]                   // soft hyphen
    [InlineData("ﬁnancial ﬂow", "financial flow")]       // ligatures
    [InlineData("Straße STRASSE ẞ", "strasse strasse ss")] // ß and capital ẞ fold to ss
    [InlineData("café", "café")]                  // decomposed é composes
    [InlineData("①②③ x²", "123 x2")]                    // circled digits, superscripts
    [InlineData("b\uFE0Fad", "bad")]                     // variation selector
    // Greek: final sigma folds like sigma
    [InlineData("ΟΔΟΣ οδος", "οδοσ οδοσ")]
    // Cyrillic
    [InlineData("КУПИТЬ СЕЙЧАС", "купить сейчас")]
    [InlineData("ку\u200Bпить", "купить")]
    [InlineData("ＫＵＰＩＴＥ", "kupite")]
    // CJK: half-width katakana widen, full-width Latin narrows, ideographs stay
    [InlineData("ｶﾀｶﾅ", "カタカナ")]
    [InlineData("立即购买ＮＯＷ", "立即购买now")]
    [InlineData("㈱", "(株)")]
    public void Normalizes(string input, string expected) => Assert.Equal(expected, TextNormalizer.Normalize(input));

    [Theory]
    [InlineData("b.a.d", "bad")]
    [InlineData("b a d", "bad")]
    [InlineData("b-a_d!!", "bad")]
    [InlineData("к.у.п.и.т.ь", "купить")]
    [InlineData("立 即 购 买", "立即购买")]
    [InlineData("v1.a.g", "v1ag")]
    public void Compacts(string input, string expected) =>
        Assert.Equal(expected, TextNormalizer.Compact(TextNormalizer.Normalize(input)));

    [Fact]
    public void Ascii_takes_the_same_route_as_the_general_path()
    {
        // Every ASCII character lowers exactly as the general (Unicode) path would.
        for (var c = (char)1; c < 0x80; c++)
        {
            var ascii = TextNormalizer.Normalize(c.ToString());
            var general = TextNormalizer.Normalize(c + "é")[..^1];
            Assert.Equal(general, ascii);
        }
    }

    [Fact]
    public void The_fast_path_agrees_with_nfkc_and_lower_casing_for_every_character()
    {
        // LowerStable handles some blocks without ICU; every BMP character must come out as the general rule says.
        for (var c = (char)0x80; c < 0xD800; c++)
        {
            var expected = c.ToString().Normalize(System.Text.NormalizationForm.FormKC).ToLowerInvariant()
                .Replace("ß", "ss", StringComparison.Ordinal).Replace('ς', 'σ');
            if (System.Globalization.CharUnicodeInfo.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format
                || c is '\u034F' or (>= '\uFE00' and <= '\uFE0F') or (>= '\u180B' and <= '\u180F') or '\u115F' or '\u1160' or '\u3164' or '\u17B4' or '\u17B5')
                expected = "";
            var actual = TextNormalizer.Normalize(c.ToString());
            if (actual != expected) Assert.Fail($"U+{(int)c:X4}: expected \"{expected}\", got \"{actual}\"");
            // Followed by an ASCII letter (which composes with nothing), through the same paths.
            Assert.Equal(expected + "a", TextNormalizer.Normalize(c + "A"));
        }
    }

    [Fact]
    public void Supplementary_characters_survive()
    {
        Assert.Equal("𠀀x😀", TextNormalizer.Normalize("𠀀X😀"));
        Assert.Equal("𠀀x", TextNormalizer.Compact("𠀀 x😀"));
        Assert.Equal("", TextNormalizer.Normalize("\U000E0041\U000E0042")); // tag characters are format characters
    }
}
