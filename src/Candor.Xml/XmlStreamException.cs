namespace Candor.Xml;

/// <summary>The stream error conditions (RFC 6120 §4.9.3) that the XML layer itself can raise.</summary>
public enum XmlErrorCondition
{
    /// <summary>Malformed XML, invalid UTF-8, undeclared prefixes, mismatched tags, bad characters.</summary>
    NotWellFormed,
    /// <summary>A construct XMPP forbids: DTD, comment, processing instruction, entity reference other than the five predefined.</summary>
    RestrictedXml,
    /// <summary>A configured limit was exceeded: stanza size, nesting depth, attribute count or length, name length.</summary>
    PolicyViolation,
    /// <summary>An XML declaration naming an encoding other than UTF-8.</summary>
    UnsupportedEncoding,
}

public sealed class XmlStreamException(XmlErrorCondition condition, string message) : Exception(message)
{
    public XmlErrorCondition Condition { get; } = condition;
}
