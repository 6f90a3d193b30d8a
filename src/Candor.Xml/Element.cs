using System.Collections;
using System.Runtime.CompilerServices;
using System.Text;

namespace Candor.Xml;

/// <summary>A node of a stanza tree: an <see cref="Element"/> or a <see cref="TextNode"/>.</summary>
public abstract class Node
{
}

/// <summary>Character data. <see cref="Value"/> is unescaped text.</summary>
public sealed class TextNode(string value) : Node
{
    public string Value { get; } = value;
}

/// <summary>
/// Children already serialized as UTF-8, in the namespace of the element they are written in. Copies of one
/// stanza for many recipients share them, so its content is serialized once (group chat fan-out).
/// </summary>
public sealed class SerializedContent(byte[] utf8) : Node
{
    public byte[] Utf8 { get; } = utf8;
}

/// <summary>
/// An XML element with its namespace resolved. Namespace declarations are not kept as attributes:
/// the writer emits <c>xmlns</c> where an element's namespace differs from its parent's.
/// Attribute names are the local name for unprefixed attributes, <c>xml:lang</c> for the xml prefix,
/// and Clark notation <c>{namespace}local</c> for any other namespaced attribute.
/// </summary>
public sealed class Element : Node
{
    // Small inline storage, since every stanza is a tree of a few elements: attributes in one array sized for what
    // the parser read (plus a slot for the 'from' the server stamps), children as the only child (a Node, or the
    // string of a text-only element such as a body: no TextNode) until a second one makes them an array. The
    // attributes end at the array's end or at the first empty slot, so no count makes the object larger.
    private KeyValuePair<string, string>[]? _attributes;
    private object? _children;
    private int _childCount;

    public Element(string name, string ns = "")
    {
        Name = name;
        Namespace = ns;
    }

    internal Element(string name, string ns, int attributeCapacity) : this(name, ns)
    {
        if (attributeCapacity > 0) _attributes = new KeyValuePair<string, string>[attributeCapacity];
    }

    public string Name { get; set; }
    public string Namespace { get; set; }

    /// <summary>Bytes of the element as it was read (set by the parser for top-level elements), 0 when built here.
    /// Outbound queues weigh what they hold with it.</summary>
    public int SourceLength { get; set; }

    public AttributeList Attributes => new(_attributes, AttributeCount);

    private int AttributeCount
    {
        get
        {
            if (_attributes is null) return 0;
            var count = 0;
            while (count < _attributes.Length && _attributes[count].Key is not null) count++;
            return count;
        }
    }

    public NodeList Nodes => new(this);

    /// <summary>The child elements; <c>foreach</c> over them allocates nothing (modules look at every message's children).</summary>
    public ChildElements Elements => new(this);

    internal int ChildCount => _childCount;

    /// <summary>The child at <paramref name="index"/>; the only text of a text-only element is wrapped on demand.</summary>
    internal Node ChildAt(int index) => _children switch
    {
        Node[] many => many[index],
        Node one => one,
        _ => new TextNode((string)_children!),
    };

    /// <summary>The child at <paramref name="index"/> if it is an element (no wrapping of text).</summary>
    internal Element? ElementAt(int index) => _children switch
    {
        Node[] many => many[index] as Element,
        _ => _children as Element,
    };

    /// <summary>The text of a text-only element stored inline, else null.</summary>
    internal string? InlineText => _children as string;

    public bool Is(string name, string ns) => Name == name && Namespace == ns;

    public string? GetAttribute(string name)
    {
        if (_attributes is null) return null;
        foreach (var (key, value) in _attributes)
        {
            if (key is null) break;
            if (key == name) return value;
        }
        return null;
    }

    /// <summary>Sets, replaces or (with null) removes an attribute. Returns this element for chaining.</summary>
    public Element SetAttribute(string name, string? value)
    {
        var count = AttributeCount;
        for (var i = 0; i < count; i++)
        {
            if (_attributes![i].Key != name) continue;
            if (value is null)
            {
                Array.Copy(_attributes, i + 1, _attributes, i, count - i - 1);
                _attributes[count - 1] = default;
            }
            else
            {
                _attributes[i] = new(name, value);
            }
            return this;
        }
        if (value is not null) AddAttributeUnchecked(name, value);
        return this;
    }

    /// <summary>Whether one of the first <paramref name="count"/> attributes is named <paramref name="name"/> (the parser's duplicate check).</summary>
    internal bool HasAttributeBefore(int count, string name)
    {
        for (var i = 0; i < count; i++)
            if (_attributes![i].Key == name) return true;
        return false;
    }

    /// <summary>The parser's attribute <paramref name="index"/>, in the array it sized (no count to find first).</summary>
    internal void SetParsedAttribute(int index, string name, string value) => _attributes![index] = new(name, value);

    /// <summary>Appends an attribute without checking for duplicates (the parser has already checked).</summary>
    internal void AddAttributeUnchecked(string name, string value)
    {
        var count = AttributeCount;
        if (_attributes is null) _attributes = new KeyValuePair<string, string>[4];
        else if (count == _attributes.Length) Array.Resize(ref _attributes, count * 2);
        _attributes[count] = new(name, value);
    }

    public Element? GetChild(string name, string ns)
    {
        for (var i = 0; i < _childCount; i++)
            if (ElementAt(i) is { } e && e.Name == name && e.Namespace == ns) return e;
        return null;
    }

    /// <summary>The first child element in the given namespace, whatever its name.</summary>
    public Element? GetChild(string ns)
    {
        for (var i = 0; i < _childCount; i++)
            if (ElementAt(i) is { } e && e.Namespace == ns) return e;
        return null;
    }

    /// <summary>The first child element, whatever its name and namespace.</summary>
    public Element? FirstElement
    {
        get
        {
            for (var i = 0; i < _childCount; i++)
                if (ElementAt(i) is { } e) return e;
            return null;
        }
    }

    public string? GetChildText(string name, string ns) => GetChild(name, ns)?.Text;

    /// <summary>The concatenated character data directly inside this element.</summary>
    public string Text
    {
        get
        {
            switch (_children)
            {
                case null: return "";
                case string only: return only;
                case TextNode one: return one.Value;
                case Node: return "";
            }
            var sb = new StringBuilder();
            foreach (var node in (Node[])_children)
                if (node is TextNode t) sb.Append(t.Value);
            return sb.ToString();
        }
    }

    public Element Add(Node node)
    {
        switch (_children)
        {
            case null:
                _children = node;
                break;
            case Node[] many:
                if (_childCount == many.Length) Array.Resize(ref many, _childCount * 2);
                many[_childCount] = node;
                _children = many;
                break;
            default:
                _children = new Node[] { ChildAt(0), node, null!, null! };
                break;
        }
        _childCount++;
        return this;
    }

    public Element AddText(string text) => text.Length == 0 ? this : Add(new TextNode(text));

    /// <summary>Text as the only child so far, kept as the string itself (the parser's common case: a body).</summary>
    internal void AddTextInline(string text)
    {
        if (_children is null)
        {
            _children = text;
            _childCount = 1;
        }
        else
        {
            Add(new TextNode(text));
        }
    }

    /// <summary>Adds a new child element and returns the child.</summary>
    public Element AddChild(string name, string? ns = null)
    {
        var child = new Element(name, ns ?? Namespace);
        Add(child);
        return child;
    }

    public void RemoveChild(Node node) => RemoveChildren(n => ReferenceEquals(n, node), first: true);

    public void RemoveChildren(Predicate<Node> match) => RemoveChildren(match, first: false);

    private void RemoveChildren(Predicate<Node> match, bool first)
    {
        if (_children is not Node[] many)
        {
            if (_children is not null && match(ChildAt(0))) ClearChildren();
            return;
        }
        var kept = 0;
        var removed = false;
        for (var i = 0; i < _childCount; i++)
        {
            if (!(first && removed) && match(many[i]))
            {
                removed = true;
                continue;
            }
            many[kept++] = many[i];
        }
        Array.Clear(many, kept, _childCount - kept);
        _childCount = kept;
        if (kept == 0) _children = null;
    }

    public void ClearChildren()
    {
        _children = null;
        _childCount = 0;
    }

    /// <summary>A deep copy; stanzas are shared between recipients, so a module that modifies one copies it first.</summary>
    public Element Clone()
    {
        var copy = new Element(Name, Namespace) { SourceLength = SourceLength, _childCount = _childCount };
        if (_attributes is not null) copy._attributes = (KeyValuePair<string, string>[])_attributes.Clone();
        copy._children = _children switch
        {
            Element one => one.Clone(),
            Node[] many => CloneAll(many, _childCount),
            _ => _children,
        };
        return copy;
    }

    private static Node[] CloneAll(Node[] nodes, int count)
    {
        var copy = new Node[nodes.Length];
        for (var i = 0; i < count; i++) copy[i] = nodes[i] is Element e ? e.Clone() : nodes[i];
        return copy;
    }

    /// <summary>Serialized form with this element's namespace declared (for logs, stores and tests).</summary>
    public override string ToString() => ElementWriter.ToXmlString(this);
}

/// <summary>The attributes of an <see cref="Element"/> as name/value pairs, a view without allocation.</summary>
public readonly struct AttributeList(KeyValuePair<string, string>[]? items, int count) : IReadOnlyList<KeyValuePair<string, string>>
{
    public int Count => count;
    public KeyValuePair<string, string> this[int index] =>
        (uint)index < (uint)count ? items![index] : throw new ArgumentOutOfRangeException(nameof(index));

    public ArraySegment<KeyValuePair<string, string>>.Enumerator GetEnumerator() =>
        new ArraySegment<KeyValuePair<string, string>>(items ?? [], 0, count).GetEnumerator();
    IEnumerator<KeyValuePair<string, string>> IEnumerable<KeyValuePair<string, string>>.GetEnumerator() => GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>The child nodes of an <see cref="Element"/>, a view without allocation (but see <see cref="Element.ChildAt"/>).</summary>
public readonly struct NodeList(Element element) : IReadOnlyList<Node>
{
    public int Count => element.ChildCount;
    public Node this[int index] =>
        (uint)index < (uint)element.ChildCount ? element.ChildAt(index) : throw new ArgumentOutOfRangeException(nameof(index));

    public Enumerator GetEnumerator() => new(element);
    IEnumerator<Node> IEnumerable<Node>.GetEnumerator() => GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public struct Enumerator(Element element) : IEnumerator<Node>
    {
        private int _index = -1;

        public Node Current { get; private set; } = null!;
        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            if (++_index >= element.ChildCount) return false;
            Current = element.ChildAt(_index);
            return true;
        }

        public void Reset() => _index = -1;
        public void Dispose() { }
    }
}

/// <summary>The child elements of an <see cref="Element"/>, skipping text: a struct, enumerated without allocating.</summary>
[CollectionBuilder(typeof(ChildElements), nameof(Create))]
public readonly struct ChildElements(Element? parent) : IEnumerable<Element>
{
    /// <summary>For <c>?? []</c> after <c>?.Elements</c>: no elements.</summary>
    public static ChildElements Create(ReadOnlySpan<Element> elements)
    {
        if (elements.IsEmpty) return default;
        var parent = new Element("");
        foreach (var e in elements) parent.Add(e);
        return new(parent);
    }

    public Enumerator GetEnumerator() => new(parent);
    IEnumerator<Element> IEnumerable<Element>.GetEnumerator() => GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public struct Enumerator(Element? parent) : IEnumerator<Element>
    {
        private int _index = -1;

        public Element Current { get; private set; } = null!;
        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            if (parent is null) return false;
            while (++_index < parent.ChildCount)
                if (parent.ElementAt(_index) is { } e)
                {
                    Current = e;
                    return true;
                }
            return false;
        }

        public void Reset() => _index = -1;
        public void Dispose() { }
    }
}
