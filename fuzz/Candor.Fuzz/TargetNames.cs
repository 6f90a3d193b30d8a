namespace Candor.Fuzz;

/// <summary>
/// The names of <see cref="Targets.All"/>, in a class of their own: looking a name up here runs nothing that is
/// instrumented, which must wait until Fuzzer.Run has set up the coverage map (Program.cs).
/// </summary>
public static class TargetNames
{
    public static readonly string[] All = ["stream", "fragment", "jid", "scram-first", "scram-final", "plain", "config", "policy", "differential"];
}
