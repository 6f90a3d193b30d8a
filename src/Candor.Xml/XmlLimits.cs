namespace Candor.Xml;

/// <summary>Limits the parser enforces; exceeding one raises <see cref="XmlErrorCondition.PolicyViolation"/>.</summary>
public sealed record XmlLimits
{
    /// <summary>Bytes of one top-level element (stanza), from its '&lt;' to the end of its closing tag.</summary>
    public int MaxStanzaBytes { get; init; } = 256 * 1024;
    /// <summary>Element nesting depth within a stanza (the stanza itself is depth 1).</summary>
    public int MaxDepth { get; init; } = 64;
    public int MaxAttributes { get; init; } = 64;
    /// <summary>Bytes of one attribute value as written.</summary>
    public int MaxAttributeBytes { get; init; } = 64 * 1024;
    /// <summary>Bytes of one element or attribute name including its prefix.</summary>
    public int MaxNameBytes { get; init; } = 256;
    /// <summary>Bytes of the stream header.</summary>
    public int MaxHeaderBytes { get; init; } = 4096;

    public static XmlLimits Default { get; } = new();
}
