using System.Globalization;
using System.Text;

namespace Candor.Xmpp;

/// <summary>
/// The PRECIS profiles XMPP needs (RFC 8264, RFC 8265), approximated with the Unicode data .NET ships:
/// UsernameCaseMapped for localparts and OpaqueString for resourceparts and passwords.
/// Not implemented: the contextual rules (CONTEXTJ/CONTEXTO), the exception table and the bidi rule.
/// </summary>
internal static class Precis
{
    /// <summary>UsernameCaseMapped: width mapping, lower case, NFC, then IdentifierClass only. Null if disallowed.</summary>
    public static string? PrepareUsernameCaseMapped(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
            return null;
        if (Ascii.IsValid(text))
            return PrepareAsciiIdentifier(text);

        string? mapped = Normalize(MapWidth(text).ToLowerInvariant(), NormalizationForm.FormC);
        if (mapped is null || !AllRunes(mapped, IsIdentifierClass))
            return null;
        // IdentifierClass disallows HasCompat code points; after NFC a string holds one exactly when NFKC would change it.
        return mapped.IsNormalized(NormalizationForm.FormKC) ? mapped : null;
    }

    /// <summary>OpaqueString: non-ASCII spaces to U+0020, NFC, then FreeformClass only. Null if disallowed.</summary>
    public static string? PrepareOpaqueString(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
            return null;
        if (Ascii.IsValid(text))
            return IsAsciiFreeform(text) ? text.ToString() : null;

        string? mapped = Normalize(MapNonAsciiSpaces(text), NormalizationForm.FormC);
        return mapped is not null && AllRunes(mapped, IsFreeformClass) ? mapped : null;
    }

    static string? PrepareAsciiIdentifier(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (c is < '\u0021' or > '\u007E')
                return null;
        }
        return ToLowerAscii(text);
    }

    /// <summary>Lower-cases ASCII letters, allocating only the result.</summary>
    public static string ToLowerAscii(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (char.IsAsciiLetterUpper(c))
                return string.Create(text.Length, text, static (span, source) => Ascii.ToLower(source, span, out _));
        }
        return text.ToString();
    }

    static bool IsAsciiFreeform(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (c is < '\u0020' or '\u007F')
                return false;
        }
        return true;
    }

    // Fullwidth and halfwidth forms decompose to their ordinary counterparts; U+3000 is the wide space.
    static string MapWidth(ReadOnlySpan<char> text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (c == '\u3000')
                builder.Append(' ');
            else if (c is >= '\uFF01' and <= '\uFFEE')
                builder.Append(c.ToString().Normalize(NormalizationForm.FormKC));
            else
                builder.Append(c);
        }
        return builder.ToString();
    }

    static string MapNonAsciiSpaces(ReadOnlySpan<char> text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (char c in text)
            builder.Append(c > '\u007F' && char.GetUnicodeCategory(c) == UnicodeCategory.SpaceSeparator ? ' ' : c);
        return builder.ToString();
    }

    static string? Normalize(string text, NormalizationForm form)
    {
        if (!IsWellFormed(text))
            return null;
        try
        {
            return text.Normalize(form);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    static bool IsWellFormed(string text)
    {
        ReadOnlySpan<char> rest = text;
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(rest, out _, out int consumed) != System.Buffers.OperationStatus.Done)
                return false;
            rest = rest[consumed..];
        }
        return true;
    }

    static bool AllRunes(string text, Func<Rune, bool> allowed)
    {
        foreach (Rune rune in text.EnumerateRunes())
        {
            if (!allowed(rune))
                return false;
        }
        return true;
    }

    static bool IsIdentifierClass(Rune rune)
    {
        if (rune.Value is >= 0x21 and <= 0x7E)
            return true;
        if (IsOldHangulJamo(rune.Value) || IsIgnorable(rune.Value))
            return false;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.LowercaseLetter or UnicodeCategory.UppercaseLetter
            or UnicodeCategory.TitlecaseLetter or UnicodeCategory.OtherLetter or UnicodeCategory.ModifierLetter
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark;
    }

    static bool IsFreeformClass(Rune rune)
    {
        if (rune.Value is >= 0x20 and <= 0x7E)
            return true;
        if (IsOldHangulJamo(rune.Value) || IsIgnorable(rune.Value))
            return false;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator => false,
            _ => true,
        };
    }

    // Conjoining jamo (Hangul_Syllable_Type L, V, T); NFC has already composed the modern sequences.
    static bool IsOldHangulJamo(int c) =>
        c is >= 0x1100 and <= 0x11FF or >= 0xA960 and <= 0xA97F or >= 0xD7B0 and <= 0xD7FF;

    // Default_Ignorable_Code_Point outside the Cf and Cn categories, which are rejected anyway.
    static bool IsIgnorable(int c) =>
        c is 0x034F or 0x115F or 0x1160 or 0x17B4 or 0x17B5 or >= 0x180B and <= 0x180F or 0x3164
            or >= 0xFE00 and <= 0xFE0F or 0xFFA0 or >= 0xE0100 and <= 0xE01EF;
}
