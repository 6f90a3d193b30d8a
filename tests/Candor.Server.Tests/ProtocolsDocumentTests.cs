using System.Text;
using Candor.Server.Modules;

namespace Candor.Server.Tests;

/// <summary>docs/PROTOCOLS.md lists exactly what the modules declare.</summary>
public class ProtocolsDocumentTests
{
    [Fact]
    public void ModuleTableMatchesTheModulesDeclarations()
    {
        var path = Path.Combine(RepositoryRoot(), "docs", "PROTOCOLS.md");
        var document = File.ReadAllText(path);
        const string begin = "<!-- modules:begin -->\n", end = "<!-- modules:end -->";
        var start = document.IndexOf(begin, StringComparison.Ordinal);
        var stop = document.IndexOf(end, StringComparison.Ordinal);
        Assert.True(start >= 0 && stop > start, "docs/PROTOCOLS.md lacks the modules markers");
        var expected = ModuleTable();
        var actual = document[(start + begin.Length)..stop];
        Assert.True(expected == actual, $"docs/PROTOCOLS.md is out of date; the table between the markers should be:\n{expected}");
    }

    internal static string ModuleTable()
    {
        var table = new StringBuilder("| specification | version | module | notes |\n|---|---|---|---|\n");
        foreach (var module in ModuleCatalog.Create())
            foreach (var p in module.Protocols)
                table.Append($"| {p.Spec} | {p.Version} | {module.GetType().Name} | {p.Note} |\n");
        return table.ToString();
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Candor.slnx"))) directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
