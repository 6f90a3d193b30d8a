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
        Grow(ref buffer, input.Length * 2, 0);
        if (LowerStable(input, buffer)) return input.Length;
        var text = input.ToString();
        // IsNormalized is a fast check; Normalize allocates only when something changes.
        if (!text.IsNormalized(NormalizationForm.FormKC)) text = text.Normalize(NormalizationForm.FormKC);
        var visible = ArrayPool<char>.Shared.Rent(text.Length);
        try
        {
            var length = 0;
            var sharpS = 0;
            foreach (var rune in text.EnumerateRunes())
            {
                if (IsIgnorable(rune)) continue;
                if (rune.Value is 'ß' or 'ẞ') sharpS++;
                length += rune.EncodeToUtf16(visible.AsSpan(length));
            }
            Grow(ref buffer, length + sharpS, 0);
            length = visible.AsSpan(0, length).ToLowerInvariant(buffer);
            // The folds lower-casing does not do: ß (and ẞ, lowered to ß) to ss, final sigma to sigma.
            if (sharpS == 0 && buffer.AsSpan(0, length).IndexOf('ς') < 0) return length;
            var end = length + sharpS;
            for (int from = length - 1, to = end - 1; from >= 0; from--)
            {
                var c = buffer[from];
                if (c == 'ß')
                {
                    buffer[to--] = 's';
                    buffer[to--] = 's';
                }
                else
                {
                    buffer[to--] = c == 'ς' ? 'σ' : c;
                }
            }
            return end;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(visible);
        }
    }

    /// <summary>
    /// Text made only of characters that NFKC leaves alone and that are not format characters (ASCII, Latin-1
    /// letters, basic Greek, Cyrillic, Hebrew and Arabic letters, kana, CJK ideographs, Hangul syllables) needs
    /// no normalization, only lower-casing, whose mappings in these blocks are simple offsets: done here,
    /// without the per-call cost of ICU. False (output unusable) at the first other character, or ß and ς,
    /// which fold specially: the general path takes those. The tests check every character against the
    /// general path.
    /// </summary>
    private static bool LowerStable(ReadOnlySpan<char> input, Span<char> output)
    {
        for (var i = 0; i < input.Length; i++)
        {
            int c = input[i];
            if (c < 0x80)
            {
                output[i] = (uint)(c - 'A') <= 'Z' - 'A' ? (char)(c | 0x20) : (char)c;
                continue;
            }
            int lower;
            if (c is >= 0x00C0 and <= 0x00FF) // Latin-1 letters, × and ÷
                lower = c is <= 0x00DE and not 0x00D7 ? c + 0x20 : c == 0x00DF ? -1 : c;
            else if (c is >= 0x0391 and <= 0x03CE) // basic Greek
                lower = c is <= 0x03AB and not 0x03A2 ? c + 0x20 : c == 0x03C2 ? -1 : c;
            else if (c is >= 0x0400 and <= 0x04FF) // Cyrillic
                lower = c switch
                {
                    <= 0x040F => c + 0x50,
                    <= 0x042F => c + 0x20,
                    <= 0x045F => c,
                    (>= 0x0460 and <= 0x0481) or (>= 0x048A and <= 0x04BF) or (>= 0x04D0 and <= 0x04FF) => c | 1,
                    0x04C0 => 0x04CF,
                    >= 0x04C1 and <= 0x04CE => (c & 1) == 1 ? c + 1 : c,
                    _ => c,
                };
            else if (c is (>= 0x05D0 and <= 0x05EA) or (>= 0x0621 and <= 0x064A) or (>= 0x3041 and <= 0x3096)
                     or (>= 0x30A1 and <= 0x30FA) or (>= 0x4E00 and <= 0x9FFF) or (>= 0xAC00 and <= 0xD7A3))
                lower = c; // Hebrew, Arabic, kana, ideographs, Hangul: no case
            else
                lower = -1;
            if (lower < 0) return false;
            output[i] = (char)lower;
        }
        return true;
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
