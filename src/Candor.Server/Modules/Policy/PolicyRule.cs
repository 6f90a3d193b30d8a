namespace Candor.Server.Modules.Policy;

public enum PolicyAction
{
    /// <summary>Not delivered; the sender gets policy-violation naming the rule.</summary>
    Reject,
    /// <summary>An exception: a message an allow rule matches is delivered whatever reject rules match.</summary>
    Allow,
}

/// <summary>Whose messages a rule applies to.</summary>
public enum PolicyWhose
{
    Everyone,
    /// <summary>Senders not in the recipient's roster (pending subscription requests do not count as being in it).</summary>
    Strangers,
}

/// <summary>The parts of a message a rule looks at.</summary>
[Flags]
public enum PolicyFields
{
    None = 0,
    Body = 1,
    Subject = 2,
}

public enum PhraseMatch
{
    /// <summary>The phrase must not be part of a longer word (except in scripts written without spaces).</summary>
    Word,
    /// <summary>Anywhere, also inside longer words.</summary>
    Substring,
}

/// <summary>One rule as the policy file states it (phrases and patterns as written, before normalization).</summary>
public sealed class PolicyRule
{
    public required string Id { get; init; }
    public required string Description { get; init; }
    public IReadOnlyList<string> Phrases { get; init; } = [];
    public IReadOnlyList<string> Regex { get; init; } = [];
    public PhraseMatch Match { get; init; } = PhraseMatch.Word;
    public bool IgnoreSeparators { get; init; }
    public PolicyFields Where { get; init; } = PolicyFields.Body | PolicyFields.Subject;
    public PolicyWhose Whose { get; init; } = PolicyWhose.Everyone;
    public PolicyAction Action { get; init; } = PolicyAction.Reject;
    /// <summary>Where the rule starts in its file (1-based), for error messages; 0 when not from a file.</summary>
    public int Line { get; init; }

    /// <summary>The text of the error the sender of a rejected message receives.</summary>
    public string RejectionText => $"Rejected by rule {Id}: {Description}";

    public static string Name(PolicyAction action) => action == PolicyAction.Allow ? "allow" : "reject";
    public static string Name(PolicyWhose whose) => whose == PolicyWhose.Strangers ? "strangers" : "everyone";
    public static string Name(PhraseMatch match) => match == PhraseMatch.Substring ? "substring" : "word";

    public static IEnumerable<string> Names(PolicyFields fields)
    {
        if (fields.HasFlag(PolicyFields.Body)) yield return "body";
        if (fields.HasFlag(PolicyFields.Subject)) yield return "subject";
    }
}

/// <summary>A policy file as read: an optional version and the rules in file order.</summary>
public sealed class PolicyDefinition
{
    public static readonly PolicyDefinition Empty = new();

    /// <summary>The operator's version label, or null to derive one from the rules.</summary>
    public string? Version { get; init; }
    public IReadOnlyList<PolicyRule> Rules { get; init; } = [];
}

/// <summary>A policy that cannot be used, with where and why; the message is one line for the operator. Line 0: the file as a whole.</summary>
public sealed class PolicyException(string file, int line, string reason)
    : Exception(line > 0 ? $"policy file {file}, line {line}: {reason}" : $"policy file {file}: {reason}")
{
    public string File { get; } = file;
    public int Line { get; } = line;
    public string Reason { get; } = reason;
}
