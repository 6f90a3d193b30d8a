namespace Candor.Fuzz.Tests;

/// <summary>
/// Replays the whole corpus (every target's seeds and regressions) through every fuzz target without
/// instrumentation. A target lets through only the exceptions its code documents for bad input, so any exception
/// here is a crash the fuzzer would report, or a broken invariant (<see cref="FuzzFinding"/>).
/// </summary>
public class CorpusReplayTests
{
    public static TheoryData<string> TargetNames() => [.. Targets.All.Keys];

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void The_whole_corpus_goes_through_the_target_without_an_unexpected_exception(string target)
    {
        var run = Targets.All[target];
        var failures = new List<string>();
        var count = 0;
        foreach (var file in Corpus.AllFiles())
        {
            count++;
            try
            {
                run(File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                failures.Add($"{Corpus.Name(file)}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.True(count > 100, $"only {count} corpus files found in {Corpus.Root}");
        Assert.True(failures.Count == 0, $"{target}: {failures.Count} of {count} inputs failed:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void The_fuzz_command_knows_every_target() => Assert.Equal(Candor.Fuzz.TargetNames.All.Order(), Targets.All.Keys.Order());

    [Fact]
    public void Every_target_has_a_seed_corpus() =>
        Assert.All(Targets.All.Keys, target => Assert.NotEmpty(Corpus.Files(target)));

    [Theory]
    [InlineData("stream", "rfc6121-message")]
    [InlineData("fragment", "message")]
    public void Seeds_parse_the_same_whole_and_byte_by_byte(string target, string seed)
    {
        var data = File.ReadAllBytes(Path.Combine(Corpus.Root, target, seed));
        var whole = Targets.Events(data, target == "fragment", data.Length);
        Assert.DoesNotContain("refused", whole);
        Assert.Equal(whole, Targets.Events(data, target == "fragment", 1));
    }
}
