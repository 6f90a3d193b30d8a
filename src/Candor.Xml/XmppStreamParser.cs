using System.Buffers;

namespace Candor.Xml;

public enum XmlEvent
{
    /// <summary>
    /// No complete event in the buffer yet. Consumed is the buffer's start, or later when whitespace or the XML
    /// declaration in front of the pending token were skipped (or the end, when nothing else is pending).
    /// </summary>
    None,
    /// <summary>The stream header (<c>&lt;stream:stream ...&gt;</c>) was read; the element holds its attributes.</summary>
    StreamOpen,
    /// <summary>A complete top-level element (a stanza, or a WebSocket frame's element).</summary>
    Element,
    /// <summary><c>&lt;/stream:stream&gt;</c> was read.</summary>
    StreamClose,
}

/// <summary>
/// Incremental parser for XMPP's restricted XML (RFC 6120 §11).
/// </summary>
/// <remarks>
/// Two passes per top-level token. A resumable byte-level scanner finds where the current token (XML declaration,
/// stream header, stanza or stream close) ends: it keeps its state between calls, so every byte is scanned once
/// however the data is split, and it raises restricted constructs, depth and size limits as soon as they show up.
/// Only then does <see cref="TreeBuilder"/> parse the complete token in one go, from a contiguous span. The caller
/// holds the unconsumed bytes for us anyway (the pipe keeps them until the token is consumed), so building from
/// them is simpler than carrying a half-built tree and half-read names across calls, and the scan skips text and
/// attribute values with vectorized searches. Strings and elements are allocated only for the finished tree.
/// </remarks>
public sealed class XmppStreamParser(XmlLimits limits, bool fragmentMode = false)
{
    private enum State { Idle, Open, StartTag, SingleQuoted, DoubleQuoted, Text, EndTag, Bang, CData, Declaration, Closed }

    private enum Token { Declaration, Header, Element, Close }

    private static readonly SearchValues<byte> Whitespace = SearchValues.Create(" \t\r\n"u8);

    private readonly TreeBuilder _builder = new(limits);
    private State _state;
    private long _scanned;         // bytes of the buffer already scanned (buffers start where we last consumed)
    private long _tokenStart = -1; // offset of the pending token's '<', or -1 between tokens
    private int _depth;            // elements open in the pending top-level element
    private int _match;            // progress through "[CDATA[" or "xml", or ']' seen in a row in a CDATA section
    private byte _last;            // previous byte of a start tag or declaration, to spot "/>" and "?>"
    private bool _inName;          // the current start tag's name is still being read
    private long _nameStart;       // token-relative offset of the current start tag's name
    private long _nameLength;      // its length once read
    private long _endNameStart;    // token-relative offset of the current end tag's name
    private int[] _openNames = new int[4]; // start and length of each open element's name, token-relative (a token is at most MaxStanzaBytes)
    private bool _headerRead;
    private bool _declarationAllowed = true;
    private bool _failed;

    public XmlLimits Limits { get; } = limits;
    public bool FragmentMode { get; } = fragmentMode;
    public string? DefaultNamespace { get; private set; }

    public void Reset()
    {
        _builder.Reset();
        _state = State.Idle;
        _scanned = 0;
        _tokenStart = -1;
        _depth = 0;
        _inName = false;
        _headerRead = false;
        _declarationAllowed = true;
        _failed = false;
        DefaultNamespace = null;
    }

    /// <summary>
    /// Reads at most one event from <paramref name="buffer"/>, which must start where the previous call's
    /// <paramref name="consumed"/> was and hold at least the bytes that call saw. Scanning resumes where it stopped,
    /// so a stanza arriving in small pieces is still scanned once. Throws <see cref="XmlStreamException"/> on any
    /// error, after which the parser is unusable.
    /// </summary>
    public XmlEvent Read(ReadOnlySequence<byte> buffer, out SequencePosition consumed, out Element? element)
    {
        if (_failed) throw new InvalidOperationException("the parser failed; the stream must be closed");
        try
        {
            return ReadToken(buffer, out consumed, out element);
        }
        catch (XmlStreamException)
        {
            _failed = true;
            throw;
        }
    }

    private XmlEvent ReadToken(ReadOnlySequence<byte> buffer, out SequencePosition consumed, out Element? element)
    {
        if (buffer.Length < _scanned)
            throw new InvalidOperationException("the buffer must start where the previous read consumed up to");
        var offset = _scanned;
        foreach (var memory in buffer.Slice(_scanned))
        {
            var span = memory.Span;
            var i = 0;
            while (i < span.Length)
            {
                if (!Scan(buffer, span, ref i, offset, out var token)) continue;
                var end = offset + i;
                var start = _tokenStart;
                CheckSize(end - start, token == Token.Declaration);
                // Usually the token lies within this segment; otherwise copy it out of the sequence.
                var ev = start >= offset
                    ? Build(token, span[(int)(start - offset)..i], out element)
                    : Build(token, buffer.Slice(start, end - start), out element);
                _tokenStart = -1;
                _state = token == Token.Close ? State.Closed : State.Idle;
                if (ev == XmlEvent.None) continue;
                _scanned = 0;
                consumed = buffer.GetPosition(end);
                return ev;
            }
            offset += span.Length;
            if (_tokenStart >= 0) CheckSize(offset - _tokenStart, _state == State.Declaration);
        }

        element = null;
        if (_tokenStart < 0)
        {
            _scanned = 0;
            consumed = buffer.End;
            return XmlEvent.None;
        }
        consumed = buffer.GetPosition(_tokenStart);
        _scanned = offset - _tokenStart;
        _tokenStart = 0;
        return XmlEvent.None;
    }

    private void CheckSize(long size, bool declaration)
    {
        if (declaration || !(_headerRead || FragmentMode))
        {
            if (size > Limits.MaxHeaderBytes) throw TreeBuilder.Policy("stream header too large");
        }
        else if (size > Limits.MaxStanzaBytes)
        {
            throw TreeBuilder.Policy("stanza too large");
        }
    }

    /// <summary>
    /// Scans from <paramref name="i"/>; returns true with <paramref name="i"/> just past the end of a token, or
    /// false having scanned the whole span.
    /// </summary>
    private bool Scan(in ReadOnlySequence<byte> buffer, ReadOnlySpan<byte> span, ref int i, long offset, out Token token)
    {
        token = default;
        while (i < span.Length)
        {
            switch (_state)
            {
                case State.Idle:
                {
                    var skip = span[i..].IndexOfAnyExcept(Whitespace);
                    if (skip < 0)
                    {
                        i = span.Length;
                        break;
                    }
                    i += skip;
                    if (span[i] != '<') throw TreeBuilder.NotWellFormed("character data outside of an element");
                    _tokenStart = offset + i;
                    _state = State.Open;
                    i++;
                    break;
                }
                case State.Open:
                {
                    var b = span[i++];
                    if (b == '?')
                    {
                        if (!_declarationAllowed) throw Restricted("processing instructions are not allowed");
                        _state = State.Declaration;
                        _match = 0;
                        break;
                    }
                    _declarationAllowed = false;
                    if (b == '/')
                    {
                        if (_depth == 0 && (FragmentMode || !_headerRead))
                            throw TreeBuilder.NotWellFormed("closing tag without an open element");
                        _endNameStart = offset + i - _tokenStart;
                        _state = State.EndTag;
                    }
                    else if (b == '!')
                    {
                        _state = State.Bang;
                        _match = 0;
                    }
                    else
                    {
                        i--;
                        _state = State.StartTag;
                        _last = 0;
                        _nameStart = offset + i - _tokenStart;
                        _inName = true;
                    }
                    break;
                }
                case State.StartTag:
                {
                    var b = span[i++];
                    // A name ends at the first byte no name can hold; the end tag must repeat exactly these bytes.
                    if (_inName && b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)'/' or (byte)'>' or (byte)'\'' or (byte)'"' or (byte)'<' or (byte)'=')
                    {
                        _nameLength = offset + i - 1 - _tokenStart - _nameStart;
                        _inName = false;
                    }
                    // Outside attribute values a '/' in a start tag can only end an empty element: refuse "<a/ >" here,
                    // or the scanner would count the element as open and wait for an end tag that never comes.
                    if (_last == '/' && b != '>') throw TreeBuilder.NotWellFormed("'/' in a tag must be followed by '>'");
                    if (b == '>')
                    {
                        var empty = _last == '/';
                        if (!_headerRead && !FragmentMode && _depth == 0)
                        {
                            if (empty) throw TreeBuilder.NotWellFormed("the stream header must not be empty");
                            token = Token.Header;
                            return true;
                        }
                        if (_depth + 1 > Limits.MaxDepth) throw TreeBuilder.Policy("elements nested too deeply");
                        if (empty && _depth == 0)
                        {
                            token = Token.Element;
                            return true;
                        }
                        if (!empty) PushName();
                        _state = State.Text;
                    }
                    else if (b == '\'') _state = State.SingleQuoted;
                    else if (b == '"') _state = State.DoubleQuoted;
                    else if (b == '<') throw TreeBuilder.NotWellFormed("'<' inside a tag");
                    _last = b;
                    break;
                }
                case State.SingleQuoted:
                case State.DoubleQuoted:
                {
                    var quote = _state == State.SingleQuoted ? (byte)'\'' : (byte)'"';
                    var found = span[i..].IndexOfAny(quote, (byte)'<');
                    if (found < 0)
                    {
                        i = span.Length;
                        break;
                    }
                    i += found;
                    if (span[i] == '<') throw TreeBuilder.NotWellFormed("'<' in an attribute value");
                    i++;
                    _state = State.StartTag;
                    _last = 0;
                    break;
                }
                case State.Text:
                {
                    var found = span[i..].IndexOf((byte)'<');
                    if (found < 0)
                    {
                        i = span.Length;
                        break;
                    }
                    i += found + 1;
                    _state = State.Open;
                    break;
                }
                case State.EndTag:
                {
                    var found = span[i..].IndexOf((byte)'>');
                    if (found < 0)
                    {
                        i = span.Length;
                        break;
                    }
                    i += found + 1;
                    if (_depth == 0)
                    {
                        token = Token.Close;
                        return true;
                    }
                    // Checked now, not when the stanza ends: "<message><body></message>" is refused at its third tag.
                    if (!ClosesOpenElement(buffer, offset + i - 1))
                        throw TreeBuilder.NotWellFormed("closing tag does not match the open element");
                    _state = State.Text;
                    if (--_depth == 0)
                    {
                        token = Token.Element;
                        return true;
                    }
                    break;
                }
                case State.Bang:
                {
                    var b = span[i++];
                    if (b != "[CDATA["u8[_match])
                    {
                        throw _match == 0
                            ? Restricted("comments, DTDs and other declarations are not allowed")
                            : TreeBuilder.NotWellFormed("malformed CDATA section");
                    }
                    if (++_match < "[CDATA["u8.Length) break;
                    if (_depth == 0) throw TreeBuilder.NotWellFormed("character data outside of an element");
                    _state = State.CData;
                    _match = 0;
                    break;
                }
                case State.CData:
                {
                    if (_match == 0)
                    {
                        var found = span[i..].IndexOf((byte)']');
                        if (found < 0)
                        {
                            i = span.Length;
                            break;
                        }
                        i += found;
                    }
                    var b = span[i++];
                    if (b == ']') _match++;
                    else if (b == '>' && _match >= 2) _state = State.Text;
                    else _match = 0;
                    break;
                }
                case State.Declaration:
                {
                    var b = span[i++];
                    if (_match < 3)
                    {
                        if (b != "xml"u8[_match++]) throw Restricted("processing instructions are not allowed");
                    }
                    else if (_match == 3)
                    {
                        if (!Whitespace.Contains(b)) throw Restricted("processing instructions are not allowed");
                        _match++;
                    }
                    else if (b == '>' && _last == '?')
                    {
                        token = Token.Declaration;
                        return true;
                    }
                    _last = b;
                    break;
                }
                case State.Closed:
                {
                    var skip = span[i..].IndexOfAnyExcept(Whitespace);
                    if (skip >= 0) throw TreeBuilder.NotWellFormed("data after the end of the stream");
                    i = span.Length;
                    break;
                }
            }
        }
        return false;
    }

    private void PushName()
    {
        if (2 * _depth + 2 > _openNames.Length) Array.Resize(ref _openNames, _openNames.Length * 2);
        _openNames[2 * _depth] = (int)_nameStart;
        _openNames[2 * _depth + 1] = (int)_nameLength;
        _depth++;
    }

    /// <summary>
    /// Whether the end tag whose '&gt;' is at <paramref name="gt"/> (in <paramref name="buffer"/>) names the innermost
    /// open element: its bytes, then nothing or whitespace (ETag ::= '&lt;/' Name S? '&gt;', XML 1.0 §3.1; what follows
    /// the whitespace is the tree builder's to check). Both names lie in the buffer, which holds the whole token.
    /// </summary>
    private bool ClosesOpenElement(in ReadOnlySequence<byte> buffer, long gt)
    {
        var name = buffer.Slice(_tokenStart + _openNames[2 * _depth - 2], _openNames[2 * _depth - 1]);
        var endStart = _tokenStart + _endNameStart;
        var endLength = gt - endStart;
        if (endLength < name.Length) return false;
        var end = buffer.Slice(endStart, name.Length);
        if (endLength > name.Length && !Whitespace.Contains(buffer.Slice(end.End, 1).FirstSpan[0])) return false;
        if (name.IsSingleSegment && end.IsSingleSegment) return name.FirstSpan.SequenceEqual(end.FirstSpan);
        Span<byte> a = stackalloc byte[128];
        Span<byte> b = stackalloc byte[128];
        for (long done = 0; done < name.Length; done += a.Length)
        {
            var n = (int)Math.Min(a.Length, name.Length - done);
            name.Slice(done, n).CopyTo(a);
            end.Slice(done, n).CopyTo(b);
            if (!a[..n].SequenceEqual(b[..n])) return false;
        }
        return true;
    }

    private XmlEvent Build(Token token, ReadOnlySequence<byte> bytes, out Element? element)
    {
        var length = (int)bytes.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            bytes.CopyTo(rented);
            return Build(token, rented.AsSpan(0, length), out element);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private XmlEvent Build(Token token, ReadOnlySpan<byte> bytes, out Element? element)
    {
        element = null;
        switch (token)
        {
            case Token.Declaration:
                _builder.ParseDeclaration(bytes);
                _declarationAllowed = false;
                return XmlEvent.None;
            case Token.Header:
                element = _builder.ParseHeader(bytes);
                DefaultNamespace = _builder.HeaderDefaultNamespace();
                _headerRead = true;
                return XmlEvent.StreamOpen;
            case Token.Close:
                _builder.ParseStreamClose(bytes);
                return XmlEvent.StreamClose;
            default:
                element = _builder.ParseElement(bytes);
                element.SourceLength = bytes.Length;
                return XmlEvent.Element;
        }
    }

    private static XmlStreamException Restricted(string message) => new(XmlErrorCondition.RestrictedXml, message);
}
