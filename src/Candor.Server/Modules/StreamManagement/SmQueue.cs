using Candor.Xml;

namespace Candor.Server.Modules.StreamManagement;

/// <summary>
/// The stanzas sent on a managed stream and not yet acknowledged, with the count the peer's h is checked against
/// (XEP-0198 §4, mod 2^32). Shared by c2s sessions and s2s streams; not thread-safe: the owner locks.
/// </summary>
public sealed class SmQueue
{
    private readonly Queue<Element> _unacked = new();
    /// <summary>The peer's last h: how many of our stanzas it handled (mod 2^32).</summary>
    private uint _acked;

    public int Count => _unacked.Count;

    public void Enqueue(Element stanza) => _unacked.Enqueue(stanza);

    /// <summary>The peer handled up to <paramref name="h"/>; false when that is more than was sent (handled-count-too-high).</summary>
    public bool Acknowledge(uint h, out uint sent)
    {
        sent = unchecked(_acked + (uint)_unacked.Count);
        var count = unchecked(h - _acked);
        if (count > (uint)_unacked.Count) return false;
        for (var i = 0u; i < count; i++) _unacked.Dequeue();
        _acked = h;
        return true;
    }

    /// <summary>Everything unacknowledged, oldest first; the queue is left empty.</summary>
    public Element[] TakeAll()
    {
        Element[] all = [.. _unacked];
        _unacked.Clear();
        return all;
    }

    public Queue<Element>.Enumerator GetEnumerator() => _unacked.GetEnumerator();
}
