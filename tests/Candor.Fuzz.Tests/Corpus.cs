namespace Candor.Fuzz.Tests;

/// <summary>The seed corpus and the regressions under fuzz/corpus/&lt;target&gt;/, found from the test's folder upwards.</summary>
public static class Corpus
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "fuzz", "corpus");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("fuzz/corpus not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Every file of every target's corpus.</summary>
    public static IEnumerable<string> AllFiles() =>
        Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    public static IEnumerable<string> Files(string target) =>
        Directory.Exists(Path.Combine(Root, target))
            ? Directory.EnumerateFiles(Path.Combine(Root, target), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            : [];

    public static string Name(string file) => Path.GetRelativePath(Root, file);
}
