using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// A prefilter in front of an <see cref="AhoCorasick"/> scan: it answers "can any of the patterns occur in
/// this text?", never wrongly "no". Each pattern is represented by one <em>anchor</em>, a substring of up to
/// <see cref="MaxGram"/> characters (the whole pattern when shorter), chosen as the one fewest other patterns
/// share: in a word list that is typically the stretch across two words, which running text rarely repeats.
/// A text in which no anchor occurs contains no pattern, so the automaton, whose table does not fit the cache
/// for large lists, need not run at all — the common case, since most messages match nothing.
/// <para>
/// Text and anchors are compared as bytes: each UTF-16 code unit is folded to one byte by <see cref="Fold"/>
/// (ASCII stays itself; other characters share bytes, which can only add false alarms, not lose matches).
/// At each position the next 8 bytes are read as one 64-bit word; for each anchor length present the word
/// is masked, hashed, looked up in a bitmap (small enough for the L1/L2 cache) and, on a hit, in an exact
/// set. Positions are independent of one another, so the loads overlap instead of waiting on each other
/// as an automaton walk must. Linear: at most <see cref="MaxGram"/> lookups per character.
/// </para>
/// </summary>
internal sealed class GramFilter
{
    public const int MaxGram = 8;
    private const int Order = 3;
    private const int MinLongGram = 6;
    private const ulong Multiplier = 0x9E3779B97F4A7C15;

    private readonly ulong[] _bits;
    private readonly int _bitShift;
    private readonly ulong[] _keys;    // exact set, open addressing; a slot is empty when its length is 0
    private readonly byte[] _lengths;
    private readonly int _slotShift;
    private readonly int[] _gramLengths;  // distinct anchor lengths, longest first

    public GramFilter(IReadOnlyList<string> patterns)
    {
        // Which anchor: the gram running text is least likely to contain, by a character model of order 3
        // fitted to the patterns themselves (a list of phrases is a sample of the text it is meant for).
        // Inside a word, the next letter is all but given by the ones before it; across a word boundary it
        // is not — so the chosen gram usually spans two words, well into both.
        var model = new Dictionary<ulong, int>();
        var total = 0;
        foreach (var pattern in patterns)
            for (var i = 0; i < pattern.Length; i++)
            {
                total++;
                for (var n = 1; n <= Order + 1 && i + n <= pattern.Length; n++)
                    CollectionsMarshal.GetValueRefOrAddDefault(model, ModelKey(pattern.AsSpan(i, n)), out _)++;
            }
        // Anchor lengths: each scan position costs one lookup per distinct length, so patterns of
        // MinLongGram characters or more all get anchors of one length, the longest they all allow.
        var longGram = patterns.Select(p => p.Length).Where(n => n >= MinLongGram).DefaultIfEmpty(MaxGram).Min();
        longGram = Math.Min(longGram, MaxGram);
        var anchors = new HashSet<(ulong Key, int Length)>();
        foreach (var pattern in patterns)
        {
            var q = Math.Min(longGram, pattern.Length);
            var best = 0;
            var bestScore = double.MaxValue;
            for (var i = 0; i + q <= pattern.Length; i++)
            {
                // log P(gram) = Σ log P(c_j | up to Order characters before it, within the gram)
                var score = 0.0;
                for (var j = 0; j < q; j++)
                {
                    var context = Math.Min(j, Order);
                    var gram = pattern.AsSpan(i + j - context, context + 1);
                    double given = context == 0 ? total : model[ModelKey(gram[..^1])];
                    score += Math.Log(model[ModelKey(gram)] / given);
                }
                if (score < bestScore) (best, bestScore) = (i, score);
            }
            anchors.Add((Key(pattern.AsSpan(best, q)), q));
        }
        AnchorCount = anchors.Count;
        _gramLengths = [.. anchors.Select(a => a.Length).Distinct().OrderDescending()];

        var bitsLog2 = Math.Clamp(BitOperations.Log2((uint)anchors.Count) + 6, 12, 26); // ≥ 32 bits per anchor
        _bits = new ulong[(1 << bitsLog2) / 64];
        _bitShift = 64 - bitsLog2;
        var slotsLog2 = Math.Max(4, BitOperations.Log2((uint)anchors.Count) + 2);         // load ≤ 1/2
        _keys = new ulong[1 << slotsLog2];
        _lengths = new byte[1 << slotsLog2];
        _slotShift = 64 - slotsLog2;
        foreach (var (key, length) in anchors)
        {
            var hash = Hash(key, length);
            var bit = hash >> _bitShift;
            _bits[bit >> 6] |= 1UL << (int)bit;
            var slot = (int)(hash >> _slotShift);
            while (_lengths[slot] != 0) slot = (slot + 1) & (_keys.Length - 1);
            _keys[slot] = key;
            _lengths[slot] = (byte)length;
        }
    }

    public int AnchorCount { get; }

    /// <summary>The byte a character counts as: itself for ASCII, a mix of its bits otherwise (never ASCII).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Fold(char c) => c < 0x80 ? (byte)c : (byte)(0x80 | ((c ^ (c >> 7)) & 0x7F));

    /// <summary>
    /// Folds <paramref name="text"/> into <paramref name="bytes"/>, which must hold
    /// <c>text.Length + MaxGram</c> bytes (the tail is padding the scan may read).
    /// </summary>
    public static void FoldText(ReadOnlySpan<char> text, Span<byte> bytes, bool isAscii)
    {
        if (isAscii)
            System.Text.Ascii.FromUtf16(text, bytes, out _);
        else
            for (var i = 0; i < text.Length; i++) bytes[i] = Fold(text[i]);
        bytes.Slice(text.Length, MaxGram).Clear();
    }

    private static ulong ModelKey(ReadOnlySpan<char> gram) => Key(gram) | (ulong)gram.Length << 56;

    private static ulong Key(ReadOnlySpan<char> gram)
    {
        ulong key = 0;
        for (var i = 0; i < gram.Length; i++) key |= (ulong)Fold(gram[i]) << (8 * i);
        return key;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Hash(ulong key, int length) => (key ^ (ulong)length) * Multiplier;

    /// <summary>
    /// False when no pattern can occur in the text folded into <paramref name="bytes"/> (its first
    /// <paramref name="length"/> bytes, followed by <see cref="MaxGram"/> bytes of padding).
    /// </summary>
    public bool MayMatch(ReadOnlySpan<byte> bytes, int length)
    {
        if (bytes.Length < length + MaxGram) throw new ArgumentException("missing padding", nameof(bytes));
        ref var text = ref MemoryMarshal.GetReference(bytes);
        ref var bits = ref MemoryMarshal.GetArrayDataReference(_bits);
        var shift = _bitShift;
        if (_gramLengths.Length == 1)
        {
            // One anchor length (the common case: no pattern shorter than the long anchors).
            var q = _gramLengths[0];
            var mask = Mask(q);
            var salt = (ulong)q;
            var last = length - q;
            for (var i = 0; i <= last; i++)
            {
                var key = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref text, i)) & mask;
                var hash = (key ^ salt) * Multiplier;
                var bit = hash >> shift;
                if ((Unsafe.Add(ref bits, (nint)(bit >> 6)) & (1UL << (int)bit)) != 0 && Contains(key, q, hash))
                    return true;
            }
            return false;
        }
        for (var i = 0; i < length; i++)
        {
            var word = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref text, i));
            foreach (var q in _gramLengths)
            {
                if (i + q > length) continue;
                var key = word & Mask(q);
                var hash = (key ^ (ulong)q) * Multiplier;
                var bit = hash >> shift;
                if ((Unsafe.Add(ref bits, (nint)(bit >> 6)) & (1UL << (int)bit)) != 0 && Contains(key, q, hash))
                    return true;
            }
        }
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mask(int q) => q == 8 ? ulong.MaxValue : (1UL << (8 * q)) - 1;

    private bool Contains(ulong key, int length, ulong hash)
    {
        var slot = (int)(hash >> _slotShift);
        while (_lengths[slot] != 0)
        {
            if (_keys[slot] == key && _lengths[slot] == length) return true;
            slot = (slot + 1) & (_keys.Length - 1);
        }
        return false;
    }
}
