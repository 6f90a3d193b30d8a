using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// Aho–Corasick multi-pattern matching (Aho and Corasick, 1975) over UTF-16 code units: every occurrence of
/// any of the patterns in one left-to-right pass, in time linear in the text plus the number of occurrences
/// reported. Built once per policy version; immutable afterwards, so any number of threads may scan at once.
/// <para>
/// Characters are first mapped to a small alphabet (the characters that occur in some pattern; everything
/// else is one "other" symbol). When states × alphabet fits <see cref="MaxDenseEntries"/>, the failure links
/// are compiled away into a dense transition table — one array load per character. Larger automata (say,
/// thousands of distinct CJK characters) keep sorted child lists and follow failure links, still linear.
/// </para>
/// </summary>
public sealed class AhoCorasick
{
    /// <summary>Above this many table entries (4 bytes each), the automaton stays sparse.</summary>
    public const int MaxDenseEntries = 16 * 1024 * 1024;

    private readonly ushort[] _alphabet;      // char → symbol; 0 = a character no pattern contains
    private readonly int _symbols;
    // Dense form: _delta[row + symbol] is the next state's row (state × _symbols), complemented (~row)
    // when that state reports matches, so the scan loop tests the sign instead of loading another array.
    private readonly int[]? _delta;
    // Sparse form.
    private readonly int[] _fail;
    private readonly int[] _childStart;
    private readonly ushort[] _childSymbol;
    private readonly int[] _childState;
    // Outputs: patterns ending exactly at a state (_outHead, chained by _patternNext), and the nearest
    // state on the failure chain that has outputs of its own (_outLink), -1 when none.
    private readonly int[] _outHead;
    private readonly int[] _patternNext;
    private readonly int[] _outLink;

    public AhoCorasick(IReadOnlyList<string> patterns, int maxDenseEntries = MaxDenseEntries)
    {
        PatternCount = patterns.Count;
        // The alphabet: one symbol per distinct character used by the patterns.
        _alphabet = new ushort[char.MaxValue + 1];
        var symbols = 1;
        foreach (var pattern in patterns)
        {
            if (pattern.Length == 0) throw new ArgumentException("patterns must not be empty", nameof(patterns));
            foreach (var c in pattern)
                if (_alphabet[c] == 0)
                {
                    if (symbols == ushort.MaxValue) throw new ArgumentException("too many distinct characters", nameof(patterns));
                    _alphabet[c] = (ushort)symbols++;
                }
        }
        _symbols = symbols;

        // The trie, with per-state child dictionaries while building.
        var children = new List<Dictionary<ushort, int>> { new() };
        var outHead = new List<int> { -1 };
        _patternNext = new int[patterns.Count];
        for (var p = 0; p < patterns.Count; p++)
        {
            var state = 0;
            foreach (var c in patterns[p])
            {
                var symbol = _alphabet[c];
                if (!children[state].TryGetValue(symbol, out var next))
                {
                    next = children.Count;
                    children.Add([]);
                    outHead.Add(-1);
                    children[state][symbol] = next;
                }
                state = next;
            }
            _patternNext[p] = outHead[state];
            outHead[state] = p;
        }
        StateCount = children.Count;

        // Renumber the states breadth first: the shallow states, where most scanning happens, then share
        // cache lines and pages, and every state's failure target (always shallower) comes before it.
        var renumber = new int[StateCount];
        var bfs = new List<int>(StateCount) { 0 };
        for (var i = 0; i < bfs.Count; i++)
            foreach (var child in children[bfs[i]].OrderBy(kv => kv.Key).Select(kv => kv.Value))
            {
                renumber[child] = bfs.Count;
                bfs.Add(child);
            }
        children = [.. bfs.Select(old => children[old].ToDictionary(kv => kv.Key, kv => renumber[kv.Value]))];
        _outHead = [.. bfs.Select(old => outHead[old])];

        // Failure and output links, breadth first (a state's failure target is always shallower).
        _fail = new int[StateCount];
        _outLink = new int[StateCount];
        _outLink[0] = -1;
        var order = new int[StateCount];
        int head = 0, tail = 0;
        foreach (var child in children[0].Values)
        {
            _fail[child] = 0;
            _outLink[child] = -1;
            order[tail++] = child;
        }
        while (head < tail)
        {
            var state = order[head++];
            foreach (var (symbol, child) in children[state])
            {
                var f = _fail[state];
                int target;
                while (!children[f].TryGetValue(symbol, out target) && f != 0) f = _fail[f];
                _fail[child] = target;
                _outLink[child] = _outHead[target] >= 0 ? target : _outLink[target];
                order[tail++] = child;
            }
        }

        // Sorted child lists (always kept: they are small and the sparse scan needs them).
        _childStart = new int[StateCount + 1];
        _childSymbol = new ushort[StateCount - 1];
        _childState = new int[StateCount - 1];
        var at = 0;
        for (var s = 0; s < StateCount; s++)
        {
            _childStart[s] = at;
            foreach (var (symbol, child) in children[s].OrderBy(kv => kv.Key))
            {
                _childSymbol[at] = symbol;
                _childState[at++] = child;
            }
        }
        _childStart[StateCount] = at;

        if ((long)StateCount * _symbols <= maxDenseEntries)
        {
            // goto(s, a) = child if any, else goto(fail(s), a); the root goes to itself. Breadth-first
            // order guarantees fail(s)'s row is complete before s's.
            var delta = new int[StateCount * _symbols];
            FillRow(delta, 0, 0, children);
            for (var i = 0; i < tail; i++) FillRow(delta, order[i], _fail[order[i]], children);
            for (var i = 0; i < delta.Length; i++)
            {
                var target = delta[i];
                var row = target * _symbols;
                delta[i] = Reports(target) ? ~row : row;
            }
            _delta = delta;
        }
    }

    public int PatternCount { get; }
    public int StateCount { get; }
    public bool IsDense => _delta is not null;

    private bool Reports(int state) => _outHead[state] >= 0 || _outLink[state] >= 0;

    private void FillRow(int[] delta, int state, int fail, List<Dictionary<ushort, int>> children)
    {
        var row = state * _symbols;
        if (state == 0) Array.Clear(delta, 0, _symbols);
        else Array.Copy(delta, fail * _symbols, delta, row, _symbols);
        foreach (var (symbol, child) in children[state]) delta[row + symbol] = child;
    }

    /// <summary>
    /// Scans <paramref name="text"/> and calls <paramref name="sink"/> for each state reached that has
    /// outputs, with the index of the last character matched. The sink walks the outputs with
    /// <see cref="Patterns"/>. A struct sink (a ref struct may hold the text) is specialised by the JIT: no delegate, no allocation.
    /// </summary>
    public void Scan<TSink>(ReadOnlySpan<char> text, ref TSink sink) where TSink : IMatchSink, allows ref struct
    {
        var alphabet = _alphabet;
        if (_delta is { } delta)
        {
            // Every row offset in the table and every symbol is in range by construction, and the alphabet
            // covers all 65,536 code units: read without bounds checks in the one loop that runs per character.
            ref var table = ref MemoryMarshal.GetArrayDataReference(delta);
            ref var symbolOf = ref MemoryMarshal.GetArrayDataReference(alphabet);
            var symbols = _symbols;
            var row = 0;
            for (var i = 0; i < text.Length; i++)
            {
                row = Unsafe.Add(ref table, row + Unsafe.Add(ref symbolOf, text[i]));
                if (row < 0)
                {
                    row = ~row;
                    if (!sink.OnMatch(row / symbols, i)) return;
                }
            }
            return;
        }
        var state = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var symbol = alphabet[text[i]];
            while (true)
            {
                var next = symbol == 0 ? -1 : Child(state, symbol);
                if (next >= 0)
                {
                    state = next;
                    break;
                }
                if (state == 0) break;
                state = _fail[state];
            }
            if (state != 0 && Reports(state) && !sink.OnMatch(state, i)) return;
        }
    }

    private int Child(int state, ushort symbol)
    {
        int lo = _childStart[state], hi = _childStart[state + 1] - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var s = _childSymbol[mid];
            if (s == symbol) return _childState[mid];
            if (s < symbol) lo = mid + 1;
            else hi = mid - 1;
        }
        return -1;
    }

    /// <summary>The patterns that end at <paramref name="state"/>: its own, then those of its output links.</summary>
    public OutputEnumerator Patterns(int state) => new(this, state);

    public struct OutputEnumerator(AhoCorasick automaton, int state)
    {
        private int _state = state;
        private int _pattern = -2;

        public readonly int Current => _pattern;

        public bool MoveNext()
        {
            if (_pattern >= 0) _pattern = automaton._patternNext[_pattern];
            else if (_pattern == -2) _pattern = automaton._outHead[_state];
            while (_pattern < 0)
            {
                _state = automaton._outLink[_state];
                if (_state < 0) return false;
                _pattern = automaton._outHead[_state];
            }
            return true;
        }

        public readonly OutputEnumerator GetEnumerator() => this;
    }
}

/// <summary>Receives the states with outputs an <see cref="AhoCorasick"/> scan reaches; false stops the scan.</summary>
public interface IMatchSink
{
    bool OnMatch(int state, int end);
}
