using System.Buffers;
using System.Text.RegularExpressions;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// A policy's rules compiled for matching: the phrases of all rules in two Aho–Corasick automata (one over
/// the normalized text, one over its compact form for rules that ignore separators), and the regular
/// expressions on .NET's NonBacktracking engine, whose running time is linear in the text whatever the
/// pattern: nested quantifiers like <c>(a+)+$</c> cannot blow up. Patterns that need backtracking
/// (back-references, look-arounds, atomic groups) are refused at load. A match timeout stays as a
/// second guard. Immutable: built once per policy version and shared by every thread.
/// </summary>
public sealed class PolicyMatcher
{
    public static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(100);

    private readonly PolicyRule[] _rules;
    // Phrases made of ASCII only get their own automata: narrow tables (a few dozen symbols) that stay in
    // cache, and ASCII text, the common case, needs no other scan since no other phrase can occur in it.
    private readonly PhraseSet? _plainAscii;
    private readonly PhraseSet? _plainOther;
    private readonly PhraseSet? _compactAscii;
    private readonly PhraseSet? _compactOther;
    private readonly (int Rule, int Index, Regex Regex)[] _regexes;
    private readonly bool _needsCompact;

    /// <summary>Automata with fewer states than this scan fast enough without a <see cref="GramFilter"/>.</summary>
    internal const int DefaultFilterMinStates = 2048;

    public PolicyMatcher(PolicyDefinition definition, string file = "(policy)")
        : this(definition, file, DefaultFilterMinStates)
    {
    }

    /// <param name="filterMinStates">Put a <see cref="GramFilter"/> in front of automata with at least this many states (tests: 0 for all, <see cref="int.MaxValue"/> for none).</param>
    /// <param name="regexTimeout">The wall-clock guard per regex match; <see cref="RegexTimeout"/> unless a test needs more on a loaded machine.</param>
    internal PolicyMatcher(PolicyDefinition definition, string file, int filterMinStates, TimeSpan? regexTimeout = null)
    {
        _rules = [.. definition.Rules];
        var plain = new List<(string, PatternInfo)>();
        var compact = new List<(string, PatternInfo)>();
        var regexes = new List<(int, int, Regex)>();
        for (var r = 0; r < _rules.Length; r++)
        {
            var rule = _rules[r];
            for (var p = 0; p < rule.Phrases.Count; p++)
            {
                var normalized = TextNormalizer.Normalize(rule.Phrases[p]);
                if (rule.IgnoreSeparators) normalized = TextNormalizer.Compact(normalized);
                if (normalized.Length == 0)
                    throw new PolicyException(file, rule.Line,
                        $"rule '{rule.Id}': phrase \"{rule.Phrases[p]}\" is empty once normalized{(rule.IgnoreSeparators ? " and separators removed" : "")}");
                (rule.IgnoreSeparators ? compact : plain).Add((normalized, new PatternInfo(r, p, normalized.Length, rule.Match == PhraseMatch.Word)));
            }
            for (var i = 0; i < rule.Regex.Count; i++)
                regexes.Add((r, i, Compile(rule, rule.Regex[i], file, regexTimeout ?? RegexTimeout)));
        }
        (_plainAscii, _plainOther) = (PhraseSet.Create(plain, ascii: true, filterMinStates), PhraseSet.Create(plain, ascii: false, filterMinStates));
        (_compactAscii, _compactOther) = (PhraseSet.Create(compact, ascii: true, filterMinStates), PhraseSet.Create(compact, ascii: false, filterMinStates));
        _regexes = [.. regexes];
        _needsCompact = compact.Count > 0 || _rules.Any(r => r.IgnoreSeparators && r.Regex.Count > 0);
    }

    public IReadOnlyList<PolicyRule> Rules => _rules;
    public bool IsEmpty => _rules.Length == 0;
    public int StateCount => new[] { _plainAscii, _plainOther, _compactAscii, _compactOther }.Sum(p => p?.Automaton.StateCount ?? 0);

    private static Regex Compile(PolicyRule rule, string pattern, string file, TimeSpan timeout)
    {
        Regex regex;
        try
        {
            regex = new Regex(pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant | RegexOptions.IgnoreCase, timeout);
        }
        catch (NotSupportedException e)
        {
            throw new PolicyException(file, rule.Line,
                $"rule '{rule.Id}': regex /{pattern}/ needs backtracking, which could take exponential time; rules run in linear time only ({e.Message})");
        }
        catch (ArgumentException e)
        {
            throw new PolicyException(file, rule.Line, $"rule '{rule.Id}': invalid regex /{pattern}/: {e.Message}");
        }
        if (regex.IsMatch(""))
            throw new PolicyException(file, rule.Line, $"rule '{rule.Id}': regex /{pattern}/ matches empty text, so it would match every message");
        return regex;
    }

    /// <summary>
    /// Adds to <paramref name="matches"/> (created on the first match: none is allocated for text no rule
    /// matches) the rules that match <paramref name="text"/> found in <paramref name="field"/>.
    /// With <paramref name="explain"/>, each first hit per rule is recorded with where and why.
    /// </summary>
    public void Match(ReadOnlySpan<char> text, PolicyFields field, ref PolicyMatches? matches, bool explain = false)
    {
        if (_rules.Length == 0 || text.IsEmpty) return;
        var normalized = ArrayPool<char>.Shared.Rent(text.Length);
        char[]? compact = null;
        int[]? map = null;
        try
        {
            var length = TextNormalizer.Normalize(text, ref normalized);
            var norm = normalized.AsSpan(0, length);
            var isAscii = System.Text.Ascii.IsValid(norm);
            var folded = new Folded(norm, isAscii);
            Scan(_plainAscii, field, norm, norm, default, explain, ref matches, ref folded);
            if (!isAscii) Scan(_plainOther, field, norm, norm, default, explain, ref matches, ref folded);
            folded.Dispose();
            var compactLength = 0;
            if (_needsCompact)
            {
                compact = ArrayPool<char>.Shared.Rent(length);
                map = ArrayPool<int>.Shared.Rent(length);
                compactLength = TextNormalizer.Compact(norm, ref compact, ref map);
                var scanned = compact.AsSpan(0, compactLength);
                var foldedCompact = new Folded(scanned, isAscii);
                Scan(_compactAscii, field, scanned, norm, map.AsSpan(0, compactLength), explain, ref matches, ref foldedCompact);
                if (!isAscii) Scan(_compactOther, field, scanned, norm, map.AsSpan(0, compactLength), explain, ref matches, ref foldedCompact);
                foldedCompact.Dispose();
            }
            foreach (var (r, index, regex) in _regexes)
            {
                var rule = _rules[r];
                if ((rule.Where & field) == 0 || (matches?.Contains(r) ?? false)) continue;
                var target = rule.IgnoreSeparators ? compact.AsSpan(0, compactLength) : norm;
                try
                {
                    foreach (var m in regex.EnumerateMatches(target))
                    {
                        matches ??= new PolicyMatches();
                        var start = rule.IgnoreSeparators ? map![m.Index] : m.Index;
                        var end = rule.IgnoreSeparators ? map![m.Index + m.Length - 1] + 1 : m.Index + m.Length;
                        matches.Add(r, explain ? new PolicyHit(rule, field, $"regex /{rule.Regex[index]}/", new string(norm[start..end])) : null);
                        break;
                    }
                }
                catch (RegexMatchTimeoutException)
                {
                    // Fail open, and say so: an unchecked message is delivered rather than refused for our slowness.
                    matches ??= new PolicyMatches();
                    matches.TimedOut.Add(rule.Id);
                }
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(normalized);
            if (compact is not null) ArrayPool<char>.Shared.Return(compact);
            if (map is not null) ArrayPool<int>.Shared.Return(map);
        }
    }

    private void Scan(PhraseSet? set, PolicyFields field, ReadOnlySpan<char> scanned, ReadOnlySpan<char> normalized,
        ReadOnlySpan<int> map, bool explain, ref PolicyMatches? matches, ref Folded folded)
    {
        if (set is null) return;
        // No anchor of any phrase in the text: no phrase either, and the automaton would report nothing.
        // Only ASCII text is filtered: ASCII phrases in other text leave the automaton at its root for
        // almost every character, in the cache, faster than the filter would look.
        if (set.Filter is { } filter && folded.IsAscii && !filter.MayMatch(folded.Bytes(), scanned.Length)) return;
        var sink = new Sink(this, set, field, normalized, map, explain, matches);
        set.Automaton.Scan(scanned, ref sink);
        matches = sink.Matches;
    }

    /// <summary>
    /// The verdict for the rules that matched: null to deliver, else the rule that rejects. An allow rule
    /// that applies wins over every reject rule; among reject rules the first in the file is reported.
    /// <paramref name="senderIsStranger"/> is asked only when a matched rule is for strangers only.
    /// </summary>
    public ValueTask<PolicyRule?> DecideAsync(PolicyMatches? matches, Func<ValueTask<bool>> senderIsStranger) =>
        DecideAsync(matches, static ask => ask(), senderIsStranger);

    /// <summary>As above, with the question's state passed along (no closure allocated per message).</summary>
    public async ValueTask<PolicyRule?> DecideAsync<TState>(PolicyMatches? matches, Func<TState, ValueTask<bool>> senderIsStranger, TState state)
    {
        if (matches is null || matches.Rules.Count == 0) return null;
        bool? stranger = null;
        PolicyRule? reject = null;
        var rejectIndex = int.MaxValue;
        foreach (var r in matches.Rules)
        {
            var rule = _rules[r];
            if (rule.Whose == PolicyWhose.Strangers && !(stranger ??= await senderIsStranger(state))) continue;
            if (rule.Action == PolicyAction.Allow) return null;
            if (r < rejectIndex) (reject, rejectIndex) = (rule, r);
        }
        return reject;
    }

    public PolicyRule? Decide(PolicyMatches? matches, bool senderIsStranger) =>
        DecideAsync(matches, () => ValueTask.FromResult(senderIsStranger)).Result;

    private readonly record struct PatternInfo(int Rule, int Phrase, int Length, bool Word);

    /// <summary>One automaton with what each of its patterns belongs to.</summary>
    private sealed class PhraseSet
    {
        public static PhraseSet? Create(List<(string Text, PatternInfo Info)> patterns, bool ascii, int filterMinStates)
        {
            var chosen = patterns.Where(p => System.Text.Ascii.IsValid(p.Text) == ascii).ToList();
            return chosen.Count > 0 ? new PhraseSet(chosen, ascii, filterMinStates) : null;
        }

        private PhraseSet(List<(string Text, PatternInfo Info)> patterns, bool ascii, int filterMinStates)
        {
            Ascii = ascii;
            string[] texts = [.. patterns.Select(p => p.Text)];
            Automaton = new AhoCorasick(texts);
            // Only for ASCII phrases: other scripts fold several characters into one byte, and on the
            // benchmark's Cyrillic/Han messages a third passed the filter, which then cost more than it saved.
            if (ascii && Automaton.StateCount >= filterMinStates) Filter = new GramFilter(texts);
            Patterns = [.. patterns.Select(p => p.Info)];
            WordsOnly = new bool[Automaton.StateCount];
            for (var state = 0; state < WordsOnly.Length; state++)
            {
                var any = false;
                var words = true;
                foreach (var p in Automaton.Patterns(state))
                {
                    any = true;
                    words &= Patterns[p].Word;
                }
                WordsOnly[state] = any && words;
            }
        }

        public bool Ascii { get; }
        public AhoCorasick Automaton { get; }
        /// <summary>Null for small automata, which scan from the cache anyway, and for non-ASCII phrases.</summary>
        public GramFilter? Filter { get; }
        public PatternInfo[] Patterns { get; }
        /// <summary>States all of whose patterns are whole-word ones: nothing to do there unless a word ends.</summary>
        public bool[] WordsOnly { get; }
    }

    /// <summary>
    /// A text folded to bytes for <see cref="GramFilter"/>, made on first use (only filtered phrase sets need
    /// it) and shared by the scans of the same text.
    /// </summary>
    private ref struct Folded(ReadOnlySpan<char> text, bool isAscii)
    {
        private readonly ReadOnlySpan<char> _text = text;
        private byte[]? _bytes;

        public readonly bool IsAscii => isAscii;

        public byte[] Bytes()
        {
            if (_bytes is null)
            {
                _bytes = ArrayPool<byte>.Shared.Rent(_text.Length + GramFilter.MaxGram);
                GramFilter.FoldText(_text, _bytes, isAscii);
            }
            return _bytes;
        }

        public void Dispose()
        {
            if (_bytes is not null) ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = null;
        }
    }

    /// <summary>
    /// Receives the automaton's hits. Whole-word checks look at the normalized text (through the map when
    /// scanning the compact form). A state whose every pattern is settled for this scan (matched, or never
    /// able to: wrong field, or already matched rule) is remembered, so a text that reaches it again and
    /// again (aaaa… against a, aa, aaa, …) costs one look per character, not one per pattern.
    /// </summary>
    private ref struct Sink(PolicyMatcher matcher, PhraseSet set, PolicyFields field,
        ReadOnlySpan<char> normalized, ReadOnlySpan<int> map, bool explain, PolicyMatches? matches) : IMatchSink
    {
        private readonly ReadOnlySpan<char> _normalized = normalized;
        private readonly ReadOnlySpan<int> _map = map;
        private HashSet<int>? _settled;
        public PolicyMatches? Matches = matches;

        public bool OnMatch(int state, int end)
        {
            if (_settled is not null && _settled.Contains(state)) return true;
            var settled = true;
            var originalEnd = _map.IsEmpty ? end : _map[end];
            // Whether the text goes on with a letter is the same for every pattern ending here.
            var endIsBoundary = originalEnd + 1 >= _normalized.Length || !TextNormalizer.IsWordChar(_normalized[originalEnd + 1])
                || TextNormalizer.IsUnspaced(_normalized[originalEnd]);
            // Inside a word, whole-word patterns cannot match: a long run of letters against a, aa, aaa, ...
            // costs one check per character, not one per pattern.
            if (!endIsBoundary && set.WordsOnly[state]) return true;
            foreach (var p in set.Automaton.Patterns(state))
            {
                var info = set.Patterns[p];
                var rule = matcher._rules[info.Rule];
                if ((rule.Where & field) == 0 || (Matches?.Contains(info.Rule) ?? false)) continue;
                var start = end - info.Length + 1;
                var originalStart = _map.IsEmpty ? start : _map[start];
                if (info.Word && (!endIsBoundary || (originalStart > 0 && TextNormalizer.IsWordChar(_normalized[originalStart - 1])
                        && !TextNormalizer.IsUnspaced(_normalized[originalStart]))))
                {
                    // Not a whole word here; it may be when this state is reached again elsewhere.
                    settled = false;
                    continue;
                }
                Matches ??= new PolicyMatches();
                Matches.Add(info.Rule, explain
                    ? new PolicyHit(rule, field, $"phrase \"{rule.Phrases[info.Phrase]}\"", new string(_normalized[originalStart..(originalEnd + 1)]))
                    : null);
            }
            if (settled) (_settled ??= []).Add(state);
            return true;
        }
    }
}

/// <summary>The rules that matched a message, in the order found (and, when explaining, why).</summary>
public sealed class PolicyMatches
{
    private readonly HashSet<int> _set = [];

    public List<int> Rules { get; } = [];
    public List<PolicyHit> Hits { get; } = [];
    /// <summary>Regex rules that timed out (the message was not held for them).</summary>
    public List<string> TimedOut { get; } = [];

    public bool Contains(int rule) => _set.Contains(rule);

    public void Add(int rule, PolicyHit? hit)
    {
        if (!_set.Add(rule)) return;
        Rules.Add(rule);
        if (hit is not null) Hits.Add(hit);
    }
}

/// <summary>Why a rule matched: which of its phrases or patterns, in which field, on which normalized text.</summary>
public sealed record PolicyHit(PolicyRule Rule, PolicyFields Field, string Matched, string Text);
