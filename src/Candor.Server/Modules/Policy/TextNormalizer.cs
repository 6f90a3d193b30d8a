using System.Buffers;
using System.Globalization;
using System.Text;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// The text that policy rules are matched against, so that look-alike spellings match the same rule:
/// <list type="number">
/// <item>Unicode NFKC: compatibility forms fold to their plain letters (full-width Ａ and half-width ｶ
/// to A and カ, ligatures ﬁ to fi, circled ① to 1, superscripts, ...).</item>
/// <item>Default-ignorable characters removed: format characters (category Cf: zero-width space and
/// joiners, soft hyphen, word joiner, BOM, bidi controls, tags), variation selectors, the combining
/// grapheme joiner and the Hangul fillers.</item>
/// <item>Full case folding: lower case (invariant culture), plus the folds that change length or merge
/// letters lower-casing leaves apart: ß and ẞ to ss, final sigma ς to σ.</item>
/// </list>
/// The <em>compact</em> form additionally drops every character that is not a letter, mark or digit
/// (spaces, punctuation, symbols), for rules that ignore separators between letters (b.a.d → bad); it
/// keeps a map from each of its characters back to the normalized text, for whole-word checks.
/// ASCII text, most of what a server sees, takes a vectorised path that allocates nothing.
/// </summary>
public static class TextNormalizer
{
    /// <summary>Normalizes into <paramref name="buffer"/> (rented from the shared pool, grown as needed); returns the length.</summary>
    public static int Normalize(ReadOnlySpan<char> input, ref char[] buffer)
    {
        if (Ascii.IsValid(input))
        {
            // NFKC and case folding of ASCII are plain ASCII lower-casing; ASCII has no format characters.
            Grow(ref buffer, input.Length, 0);
            Ascii.ToLower(input, buffer, out var written);
            return written;
        }
        var text = input.ToString();
        // IsNormalized is a fast check; Normalize allocates only when something changes.
        if (!text.IsNormalized(NormalizationForm.FormKC)) text = text.Normalize(NormalizationForm.FormKC);
        var length = 0;
        Grow(ref buffer, text.Length * 2, 0);
        foreach (var rune in text.EnumerateRunes())
        {
            if (IsIgnorable(rune)) continue;
            var value = rune.Value;
            if (value is 'ß' or 'ẞ')
            {
                buffer[length++] = 's';
                buffer[length++] = 's';
                continue;
            }
            if (value == 'ς')
            {
                buffer[length++] = 'σ';
                continue;
            }
            var lower = Rune.ToLowerInvariant(rune);
            length += lower.EncodeToUtf16(buffer.AsSpan(length));
        }
        return length;
    }

    /// <summary>The normalized form as a string (loading, <c>candor policy check</c>, tests).</summary>
    public static string Normalize(string input)
    {
        var buffer = ArrayPool<char>.Shared.Rent(Math.Max(16, input.Length));
        try
        {
            var length = Normalize(input, ref buffer);
            return new string(buffer, 0, length);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Drops separators from normalized text: what is left are letters, marks and digits. <paramref name="map"/>
    /// receives, for each character kept, its index in <paramref name="normalized"/>.
    /// </summary>
    public static int Compact(ReadOnlySpan<char> normalized, ref char[] buffer, ref int[] map)
    {
        Grow(ref buffer, normalized.Length, 0);
        if (map.Length < normalized.Length)
        {
            ArrayPool<int>.Shared.Return(map);
            map = ArrayPool<int>.Shared.Rent(normalized.Length);
        }
        var length = 0;
        for (var i = 0; i < normalized.Length; i++)
        {
            var c = normalized[i];
            if (char.IsHighSurrogate(c) && i + 1 < normalized.Length)
            {
                if (IsKept(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, normalized[i + 1]))))
                {
                    map[length] = i;
                    buffer[length++] = c;
                    map[length] = i + 1;
                    buffer[length++] = normalized[i + 1];
                }
                i++;
                continue;
            }
            if (c < 0x80 ? char.IsAsciiLetterOrDigit(c) : IsKept(CharUnicodeInfo.GetUnicodeCategory(c)))
            {
                map[length] = i;
                buffer[length++] = c;
            }
        }
        return length;
    }

    public static string Compact(string normalized)
    {
        var buffer = ArrayPool<char>.Shared.Rent(Math.Max(16, normalized.Length));
        var map = ArrayPool<int>.Shared.Rent(Math.Max(16, normalized.Length));
        try
        {
            var length = Compact(normalized, ref buffer, ref map);
            return new string(buffer, 0, length);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
            ArrayPool<int>.Shared.Return(map);
        }
    }

    /// <summary>A letter or digit, i.e. part of a word for whole-word matching.</summary>
    public static bool IsWordChar(char c) =>
        c < 0x80 ? char.IsAsciiLetterOrDigit(c) : char.IsLetterOrDigit(c) || char.IsSurrogate(c)
            || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark;

    /// <summary>
    /// Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar): a phrase that
    /// begins or ends with one of their letters needs no word boundary there, or it could never match.
    /// </summary>
    public static bool IsUnspaced(char c) =>
        c >= 0x0E00 && (c <= 0x0EFF                      // Thai, Lao
            || c is >= '\u1000' and <= '\u109F'          // Myanmar
            || c is >= '\u1780' and <= '\u17FF'          // Khmer
            || c is >= '\u3040' and <= '\u30FF'          // Hiragana, Katakana
            || c is >= '\u3400' and <= '\u4DBF'          // CJK extension A
            || c is >= '\u4E00' and <= '\u9FFF'          // CJK unified ideographs
            || c is >= '\uF900' and <= '\uFAFF'          // CJK compatibility ideographs
            || char.IsSurrogate(c));                      // supplementary ideographs (extensions B+)

    private static bool IsKept(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
        _ => false,
    };

    /// <summary>Default-ignorable code points that render as nothing and so can hide inside a word.</summary>
    private static bool IsIgnorable(Rune rune)
    {
        var v = rune.Value;
        return Rune.GetUnicodeCategory(rune) == UnicodeCategory.Format
            || v == 0x034F                      // combining grapheme joiner
            || v is >= 0xFE00 and <= 0xFE0F     // variation selectors
            || v is >= 0xE0100 and <= 0xE01EF   // variation selectors supplement
            || v is >= 0x180B and <= 0x180F     // Mongolian free variation selectors, vowel separator
            || v is 0x115F or 0x1160 or 0x3164 or 0xFFA0 // Hangul fillers
            || v is 0x17B4 or 0x17B5;           // Khmer inherent vowels
    }

    private static void Grow(ref char[] buffer, int needed, int keep)
    {
        if (buffer.Length >= needed) return;
        var bigger = ArrayPool<char>.Shared.Rent(needed);
        buffer.AsSpan(0, keep).CopyTo(bigger);
        ArrayPool<char>.Shared.Return(buffer);
        buffer = bigger;
    }
}
