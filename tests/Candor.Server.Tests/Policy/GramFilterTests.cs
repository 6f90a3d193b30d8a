using System.Text;
using Candor.Server.Modules.Policy;

namespace Candor.Server.Tests.Policy;

/// <summary>
/// The prefilter in front of the automata may only skip texts no phrase occurs in: the matcher with the
/// filter on every phrase set, with it on none, and a naive search straight from the rules' definitions must
/// agree on random policies and texts — same rules, same order, same explanations.
/// </summary>
public sealed class GramFilterTests
{
    // Few letters, so phrases overlap and occur often; separators, case, width, zero-width characters,
    // Cyrillic and Han (unspaced), so normalization, compacting and word boundaries all come into play.
    private const string Letters = "abcab ab.-Ab\u200BАбб的一Ｂ, 1";
    // ASCII only: the filter runs on ASCII text only.
    private const string AsciiLetters = "abcab ab.-Ab, 1";

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Filtered_unfiltered_and_naive_matching_agree(int seed)
    {
        var random = new Random(seed);
        for (var round = 0; round < 40; round++)
        {
            var letters = round % 2 == 0 ? AsciiLetters : Letters;
            var rules = new List<PolicyRule>();
            for (var r = 0; r < random.Next(1, 6); r++)
            {
                var phrases = new List<string>();
                for (var p = 0; p < random.Next(1, 30); p++)
                {
                    string phrase;
                    do phrase = RandomText(random, letters, random.Next(1, 13));
                    while (TextNormalizer.Compact(TextNormalizer.Normalize(phrase)).Length == 0);
                    phrases.Add(phrase);
                }
                rules.Add(new PolicyRule
                {
                    Id = $"r{r}",
                    Description = "d",
                    Phrases = phrases,
                    Match = random.Next(2) == 0 ? PhraseMatch.Word : PhraseMatch.Substring,
                    IgnoreSeparators = random.Next(3) == 0,
                    Where = random.Next(4) == 0 ? PolicyFields.Subject : PolicyFields.Body | PolicyFields.Subject,
                    Action = random.Next(4) == 0 ? PolicyAction.Allow : PolicyAction.Reject,
                });
            }
            var definition = new PolicyDefinition { Rules = rules };
            var filtered = new PolicyMatcher(definition, "(test)", filterMinStates: 0);
            var unfiltered = new PolicyMatcher(definition, "(test)", filterMinStates: int.MaxValue);
            for (var t = 0; t < 200; t++)
            {
                var text = RandomText(random, letters, random.Next(0, 60));
                var expected = Naive(rules, text, PolicyFields.Body);
                PolicyMatches? a = null, b = null;
                filtered.Match(text, PolicyFields.Body, ref a, explain: true);
                unfiltered.Match(text, PolicyFields.Body, ref b, explain: true);
                Assert.Equal(b?.Rules ?? [], a?.Rules ?? []);
                Assert.Equal(b?.Hits.Select(h => (h.Rule.Id, h.Matched, h.Text)) ?? [], a?.Hits.Select(h => (h.Rule.Id, h.Matched, h.Text)) ?? []);
                Assert.Equal(expected, (a?.Rules ?? []).Order().ToList());
                Assert.Equal(unfiltered.Decide(b, true)?.Id, filtered.Decide(a, true)?.Id);
            }
        }
    }

    [Fact]
    public void Long_phrase_lists_agree_with_and_without_the_filter()
    {
        // The shape of the benchmark, small: word pairs from a shared vocabulary, texts from the same words.
        var random = new Random(6);
        var words = Enumerable.Range(0, 300).Select(_ => RandomWord(random, "abcdefghij", 2, 6)).Distinct().ToArray();
        var rules = Enumerable.Range(0, 10).Select(r => new PolicyRule
        {
            Id = $"r{r}",
            Description = "d",
            Phrases = [.. Enumerable.Range(0, 200).Select(_ => string.Join(" ", Enumerable.Range(0, random.Next(2, 4)).Select(_ => words[random.Next(words.Length)])))],
            Match = r % 2 == 0 ? PhraseMatch.Word : PhraseMatch.Substring,
            IgnoreSeparators = r % 5 == 4,
        }).ToList();
        var definition = new PolicyDefinition { Rules = rules };
        var filtered = new PolicyMatcher(definition, "(test)", filterMinStates: 0);
        var unfiltered = new PolicyMatcher(definition, "(test)", filterMinStates: int.MaxValue);
        var matched = 0;
        for (var t = 0; t < 2000; t++)
        {
            var text = string.Join(random.Next(5) == 0 ? ", " : " ", Enumerable.Range(0, random.Next(1, 30)).Select(_ => words[random.Next(words.Length)]));
            PolicyMatches? a = null, b = null;
            filtered.Match(text, PolicyFields.Body, ref a);
            unfiltered.Match(text, PolicyFields.Body, ref b);
            Assert.Equal(b?.Rules ?? [], a?.Rules ?? []);
            Assert.Equal(Naive(rules, text, PolicyFields.Body), (a?.Rules ?? []).Order().ToList());
            if (a is not null) matched++;
        }
        Assert.InRange(matched, 20, 1980); // the test does exercise both outcomes
    }

    private static string RandomText(Random random, string letters, int length)
    {
        var text = new StringBuilder();
        for (var i = 0; i < length; i++) text.Append(letters[random.Next(letters.Length)]);
        return text.ToString();
    }

    private static string RandomWord(Random random, string letters, int min, int max) =>
        new([.. Enumerable.Range(0, random.Next(min, max + 1)).Select(_ => letters[random.Next(letters.Length)])]);

    /// <summary>Which rules match, by brute force from the definitions: every phrase at every position.</summary>
    private static List<int> Naive(List<PolicyRule> rules, string text, PolicyFields field)
    {
        var normalized = TextNormalizer.Normalize(text);
        // The compact form and, for each of its characters, where it came from.
        var compact = new StringBuilder();
        var map = new List<int>();
        for (var i = 0; i < normalized.Length; i++)
        {
            var kept = TextNormalizer.Compact(normalized[i].ToString());
            if (kept.Length == 1)
            {
                compact.Append(kept);
                map.Add(i);
            }
        }
        var result = new List<int>();
        for (var r = 0; r < rules.Count; r++)
        {
            var rule = rules[r];
            if ((rule.Where & field) == 0) continue;
            var scanned = rule.IgnoreSeparators ? compact.ToString() : normalized;
            var matched = false;
            foreach (var raw in rule.Phrases)
            {
                var phrase = TextNormalizer.Normalize(raw);
                if (rule.IgnoreSeparators) phrase = TextNormalizer.Compact(phrase);
                for (var at = scanned.IndexOf(phrase, StringComparison.Ordinal); at >= 0 && !matched;
                     at = scanned.IndexOf(phrase, at + 1, StringComparison.Ordinal))
                {
                    if (rule.Match == PhraseMatch.Substring)
                    {
                        matched = true;
                        break;
                    }
                    var start = rule.IgnoreSeparators ? map[at] : at;
                    var end = rule.IgnoreSeparators ? map[at + phrase.Length - 1] : at + phrase.Length - 1;
                    var startOk = start == 0 || !TextNormalizer.IsWordChar(normalized[start - 1]) || TextNormalizer.IsUnspaced(normalized[start]);
                    var endOk = end + 1 >= normalized.Length || !TextNormalizer.IsWordChar(normalized[end + 1]) || TextNormalizer.IsUnspaced(normalized[end]);
                    matched = startOk && endOk;
                }
                if (matched) break;
            }
            if (matched) result.Add(r);
        }
        return result;
    }
}
