using Candor.Server.Modules.Policy;

namespace Candor.Server.Tests.Policy;

public sealed class AhoCorasickTests
{
    private struct Collect(AhoCorasick automaton, string[] patterns) : IMatchSink
    {
        public List<(int Pattern, int Start)> Found = [];

        public bool OnMatch(int state, int end)
        {
            foreach (var p in automaton.Patterns(state)) Found.Add((p, end - patterns[p].Length + 1));
            return true;
        }
    }

    private static List<(int, int)> Scan(string[] patterns, string text, int maxDense)
    {
        var automaton = new AhoCorasick(patterns, maxDense);
        var sink = new Collect(automaton, patterns);
        automaton.Scan(text, ref sink);
        return [.. sink.Found.OrderBy(f => f.Start).ThenBy(f => f.Pattern)];
    }

    private static List<(int, int)> Naive(string[] patterns, string text)
    {
        var found = new List<(int, int)>();
        for (var p = 0; p < patterns.Length; p++)
            for (var i = text.IndexOf(patterns[p], StringComparison.Ordinal); i >= 0; i = text.IndexOf(patterns[p], i + 1, StringComparison.Ordinal))
                found.Add((p, i));
        return [.. found.OrderBy(f => f.Item2).ThenBy(f => f.Item1)];
    }

    [Fact]
    public void Finds_the_classic_example()
    {
        string[] patterns = ["he", "she", "his", "hers"];
        Assert.Equal([(1, 1), (0, 2), (3, 2)], Scan(patterns, "ushers", AhoCorasick.MaxDenseEntries));
        Assert.Equal([(1, 1), (0, 2), (3, 2)], Scan(patterns, "ushers", 0));
    }

    [Theory]
    [InlineData(AhoCorasick.MaxDenseEntries)]
    [InlineData(0)] // sparse: sorted children and failure links
    public void Agrees_with_naive_search_on_random_input(int maxDense)
    {
        var random = new Random(6);
        for (var round = 0; round < 200; round++)
        {
            var alphabet = round % 2 == 0 ? "ab" : "abcк立";
            string Word(int max) => new([.. Enumerable.Range(0, random.Next(1, max)).Select(_ => alphabet[random.Next(alphabet.Length)])]);
            var patterns = Enumerable.Range(0, random.Next(1, 12)).Select(_ => Word(6)).ToArray();
            var text = Word(80);
            Assert.Equal(Naive(patterns, text), Scan(patterns, text, maxDense));
        }
    }

    [Fact]
    public void Duplicate_patterns_each_report()
    {
        string[] patterns = ["abc", "abc", "bc"];
        Assert.Equal([(0, 0), (1, 0), (2, 1)], Scan(patterns, "abc", AhoCorasick.MaxDenseEntries));
    }

    [Fact]
    public void Large_alphabets_stay_sparse()
    {
        // 3,000 distinct ideographs × their states would be a 36 MB table: the automaton stays sparse.
        var patterns = Enumerable.Range(0, 3000).Select(i => new string([(char)(0x4E00 + i), (char)(0x4E00 + (i * 7 % 3000)), (char)(0x4E00 + (i * 13 % 3000))])).ToArray();
        var automaton = new AhoCorasick(patterns);
        Assert.False(automaton.IsDense);
        var text = "前" + patterns[1234] + "後";
        var sink = new Collect(automaton, patterns);
        automaton.Scan(text, ref sink);
        Assert.Contains((1234, 1), sink.Found);
    }
}
