using System.Buffers;

namespace Candor.Xml;

public enum XmlEvent
{
    /// <summary>No complete event in the buffer yet; nothing consumed.</summary>
    None,
    /// <summary>The stream header (<c>&lt;stream:stream ...&gt;</c>) was read; the element holds its attributes.</summary>
    StreamOpen,
    /// <summary>A complete top-level element (a stanza, or a WebSocket frame's element).</summary>
    Element,
    /// <summary><c>&lt;/stream:stream&gt;</c> was read.</summary>
    StreamClose,
}

/// <summary>
/// Incremental parser for XMPP's restricted XML (placeholder until the real tokenizer lands).
/// </summary>
public sealed class XmppStreamParser(XmlLimits limits, bool fragmentMode = false)
{
    public XmlLimits Limits { get; } = limits;
    public bool FragmentMode { get; } = fragmentMode;
    public string? DefaultNamespace { get; private set; }

    public void Reset() => DefaultNamespace = null;

    public XmlEvent Read(ReadOnlySequence<byte> buffer, out SequencePosition consumed, out Element? element)
        => throw new NotImplementedException();
}
