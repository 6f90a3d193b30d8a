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
    private List<KeyValuePair<string, string>>? _attributes;
    private List<Node>? _children;

    public Element(string name, string ns = "")
    {
        Name = name;
        Namespace = ns;
    }

    public string Name { get; set; }
    public string Namespace { get; set; }

    /// <summary>Bytes of the element as it was read (set by the parser for top-level elements), 0 when built here.
    /// Outbound queues weigh what they hold with it.</summary>
    public int SourceLength { get; set; }

    public IReadOnlyList<KeyValuePair<string, string>> Attributes =>
        (IReadOnlyList<KeyValuePair<string, string>>?)_attributes ?? [];

    public IReadOnlyList<Node> Nodes => (IReadOnlyList<Node>?)_children ?? [];

    /// <summary>The child elements; <c>foreach</c> over them allocates nothing (modules look at every message's children).</summary>
    public ChildElements Elements => new(_children);

    public bool Is(string name, string ns) => Name == name && Namespace == ns;

    public string? GetAttribute(string name)
    {
        if (_attributes is null) return null;
        foreach (var a in _attributes)
            if (a.Key == name) return a.Value;
        return null;
    }

    /// <summary>Sets, replaces or (with null) removes an attribute. Returns this element for chaining.</summary>
    public Element SetAttribute(string name, string? value)
    {
        _attributes ??= [];
        for (var i = 0; i < _attributes.Count; i++)
        {
            if (_attributes[i].Key != name) continue;
            if (value is null) _attributes.RemoveAt(i);
            else _attributes[i] = new(name, value);
            return this;
        }
        if (value is not null) _attributes.Add(new(name, value));
        return this;
    }

    /// <summary>Appends an attribute without checking for duplicates (the parser has already checked).</summary>
    internal void AddAttributeUnchecked(string name, string value) => (_attributes ??= []).Add(new(name, value));

    public Element? GetChild(string name, string ns)
    {
        if (_children is null) return null;
        foreach (var node in _children)
            if (node is Element e && e.Name == name && e.Namespace == ns) return e;
        return null;
    }

    /// <summary>The first child element in the given namespace, whatever its name.</summary>
    public Element? GetChild(string ns)
    {
        if (_children is null) return null;
        foreach (var node in _children)
            if (node is Element e && e.Namespace == ns) return e;
        return null;
    }

    /// <summary>The first child element, whatever its name and namespace.</summary>
    public Element? FirstElement
    {
        get
        {
            if (_children is null) return null;
            foreach (var node in _children)
                if (node is Element e) return e;
            return null;
        }
    }

    public string? GetChildText(string name, string ns) => GetChild(name, ns)?.Text;

    /// <summary>The concatenated character data directly inside this element.</summary>
    public string Text
    {
        get
        {
            if (_children is null) return "";
            if (_children.Count == 1 && _children[0] is TextNode only) return only.Value;
            var sb = new StringBuilder();
            foreach (var node in _children)
                if (node is TextNode t) sb.Append(t.Value);
            return sb.ToString();
        }
    }

    public Element Add(Node node)
    {
        (_children ??= []).Add(node);
        return this;
    }

    public Element AddText(string text) => text.Length == 0 ? this : Add(new TextNode(text));

    /// <summary>Adds a new child element and returns the child.</summary>
    public Element AddChild(string name, string? ns = null)
    {
        var child = new Element(name, ns ?? Namespace);
        Add(child);
        return child;
    }

    public void RemoveChild(Node node) => _children?.Remove(node);

    public void RemoveChildren(Predicate<Node> match) => _children?.RemoveAll(match);

    public void ClearChildren() => _children?.Clear();

    /// <summary>A deep copy; stanzas are shared between recipients, so a module that modifies one copies it first.</summary>
    public Element Clone()
    {
        var copy = new Element(Name, Namespace) { SourceLength = SourceLength };
        if (_attributes is not null) copy._attributes = new(_attributes);
        if (_children is not null)
        {
            copy._children = new(_children.Count);
            foreach (var node in _children)
                copy._children.Add(node is Element e ? e.Clone() : node);
        }
        return copy;
    }

    /// <summary>Serialized form with this element's namespace declared (for logs, stores and tests).</summary>
    public override string ToString() => ElementWriter.ToXmlString(this);
}

/// <summary>The child elements of an <see cref="Element"/>, skipping text: a struct, enumerated without allocating.</summary>
[CollectionBuilder(typeof(ChildElements), nameof(Create))]
public readonly struct ChildElements(List<Node>? nodes) : IEnumerable<Element>
{
    private static readonly List<Node> None = [];

    /// <summary>For <c>?? []</c> after <c>?.Elements</c>: no elements.</summary>
    public static ChildElements Create(ReadOnlySpan<Element> elements) =>
        elements.IsEmpty ? default : new([.. elements.ToArray()]);

    public Enumerator GetEnumerator() => new((nodes ?? None).GetEnumerator());
    IEnumerator<Element> IEnumerable<Element>.GetEnumerator() => GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public struct Enumerator(List<Node>.Enumerator nodes) : IEnumerator<Element>
    {
        private List<Node>.Enumerator _nodes = nodes;

        public Element Current { get; private set; } = null!;
        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            while (_nodes.MoveNext())
                if (_nodes.Current is Element e)
                {
                    Current = e;
                    return true;
                }
            return false;
        }

        public void Reset() => throw new NotSupportedException();
        public void Dispose() => _nodes.Dispose();
    }
}
