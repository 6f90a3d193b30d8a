using System.Text;
using BenchmarkDotNet.Attributes;
using Candor.Server.Modules.Policy;

namespace Candor.Benchmarks;

/// <summary>
/// Issue 6's target: 10,000 literal phrases, 200-character messages, at least 1,000,000 messages/s on one
/// core. Phrases and messages are drawn from one vocabulary of 2,000 words, so the automaton really works
/// (partial matches everywhere, a full match in some messages). Each operation is one message: normalize,
/// scan, decide. Reported per message; messages/s = 1e9 / Mean(ns).
/// </summary>
[MemoryDiagnoser]
public class PolicyMatchBenchmark
{
    private const int Messages = 1000;
    private PolicyMatcher _matcher = null!;
    private string[] _ascii = null!;
    private string[] _mixed = null!;
    private int _rejected;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(6);
        var latin = Vocabulary(random, 2000, "abcdefghijklmnopqrstuvwxyz");
        var cyrillic = Vocabulary(random, 500, "абвгдежзийклмнопрстуфхцчшщыэюя");
        var han = Vocabulary(random, 500, "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生", 2, 4);
        var rules = new List<PolicyRule>();
        for (var i = 0; i < 100; i++)
        {
            var phrases = new List<string>();
            for (var j = 0; j < 100; j++)
            {
                // Mostly Latin phrases of 2-3 words; some Cyrillic and Han, as a mixed list would be.
                var words = (i % 10) switch { 8 => cyrillic, 9 => han, _ => latin };
                var separator = words == han ? "" : " ";
                phrases.Add(string.Join(separator, Enumerable.Range(0, random.Next(2, 4)).Select(_ => words[random.Next(words.Length)])));
            }
            rules.Add(new PolicyRule { Id = $"r{i}", Description = "benchmark", Phrases = phrases, Match = i % 2 == 0 ? PhraseMatch.Word : PhraseMatch.Substring });
        }
        _matcher = new PolicyMatcher(new PolicyDefinition { Rules = rules });
        _ascii = [.. Enumerable.Range(0, Messages).Select(_ => Message(random, latin, " ", 200, capitalize: true))];
        _mixed = [.. Enumerable.Range(0, Messages).Select(i => i % 2 == 0
            ? Message(random, cyrillic, " ", 200, capitalize: true)
            : Message(random, han, "", 200, capitalize: false))];
        Console.WriteLine($"// {rules.Sum(r => r.Phrases.Count)} phrases, {_matcher.StateCount} automaton states; "
            + $"{_ascii.Count(Rejects)} of {Messages} Latin and {_mixed.Count(Rejects)} of {Messages} Cyrillic/Han messages match");
    }

    private bool Rejects(string message)
    {
        PolicyMatches? matches = null;
        _matcher.Match(message, PolicyFields.Body, ref matches);
        return _matcher.Decide(matches, true) is not null;
    }

    private static string[] Vocabulary(Random random, int count, string letters, int min = 3, int max = 9) =>
        [.. Enumerable.Range(0, count).Select(_ => new string([.. Enumerable.Range(0, random.Next(min, max + 1)).Select(_ => letters[random.Next(letters.Length)])]))
            .Distinct()];

    private static string Message(Random random, string[] words, string separator, int length, bool capitalize)
    {
        var text = new StringBuilder();
        while (text.Length < length)
        {
            var word = words[random.Next(words.Length)];
            if (capitalize && random.Next(8) == 0) word = char.ToUpperInvariant(word[0]) + word[1..];
            text.Append(word).Append(random.Next(12) == 0 ? ", " : separator);
        }
        return text.ToString(0, length);
    }

    public int NormalizeLatin() => NormalizeAll(_ascii);

    public int NormalizeMixed() => NormalizeAll(_mixed);

    private static int NormalizeAll(string[] messages)
    {
        var buffer = System.Buffers.ArrayPool<char>.Shared.Rent(256);
        var total = 0;
        foreach (var message in messages) total += TextNormalizer.Normalize(message, ref buffer);
        System.Buffers.ArrayPool<char>.Shared.Return(buffer);
        return total;
    }

    [Benchmark(OperationsPerInvoke = Messages, Description = "10k phrases, 200-char Latin (ASCII) message")]
    public int Latin()
    {
        _rejected = 0;
        foreach (var message in _ascii)
        {
            PolicyMatches? matches = null;
            _matcher.Match(message, PolicyFields.Body, ref matches);
            if (_matcher.Decide(matches, true) is not null) _rejected++;
        }
        return _rejected;
    }

    [Benchmark(OperationsPerInvoke = Messages, Description = "10k phrases, 200-char Cyrillic/Han message")]
    public int Mixed()
    {
        _rejected = 0;
        foreach (var message in _mixed)
        {
            PolicyMatches? matches = null;
            _matcher.Match(message, PolicyFields.Body, ref matches);
            if (_matcher.Decide(matches, true) is not null) _rejected++;
        }
        return _rejected;
    }
}

/// <summary>
/// Adversarial input: a run of one letter against every prefix-overlapping phrase (a, aa, ..., a×200, as
/// whole words and as substrings ending in another letter) and the textbook catastrophic regexes. Time per
/// character must stay flat as the text grows: linear, no backtracking.
/// </summary>
[MemoryDiagnoser]
public class PolicyAdversarialBenchmark
{
    private PolicyMatcher _matcher = null!;
    private string _text = null!;

    [Params(1_000, 10_000, 100_000)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _matcher = new PolicyMatcher(new PolicyDefinition
        {
            Rules =
            [
                new PolicyRule { Id = "words", Description = "d", Phrases = [.. Enumerable.Range(1, 200).Select(n => new string('a', n))] },
                new PolicyRule { Id = "subs", Description = "d", Match = PhraseMatch.Substring, Phrases = [.. Enumerable.Range(1, 200).Select(n => new string('a', n) + "b")] },
                new PolicyRule { Id = "regex", Description = "d", Regex = ["(a+)+$", "(a|aa)+c", "(a*)*d"] },
            ],
        });
        _text = new string('a', Length) + "!";
    }

    [Benchmark]
    public bool Run()
    {
        PolicyMatches? matches = null;
        _matcher.Match(_text, PolicyFields.Body, ref matches);
        return matches is null;
    }
}
