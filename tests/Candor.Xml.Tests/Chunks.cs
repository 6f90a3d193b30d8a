using System.Buffers;

namespace Candor.Xml.Tests;

/// <summary>Builds <see cref="ReadOnlySequence{T}"/> values from separate chunks, as a pipe hands them out.</summary>
public static class Chunks
{
    public static ReadOnlySequence<byte> Sequence(params ReadOnlyMemory<byte>[] chunks)
    {
        if (chunks.Length == 0) return ReadOnlySequence<byte>.Empty;
        if (chunks.Length == 1) return new ReadOnlySequence<byte>(chunks[0]);
        var first = new Segment(chunks[0]);
        var last = first;
        foreach (var chunk in chunks.AsSpan(1)) last = last.Append(chunk);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>data[start..end] cut at the given absolute positions.</summary>
    public static ReadOnlySequence<byte> Cut(byte[] data, int start, int end, IEnumerable<int> cuts)
    {
        var chunks = new List<ReadOnlyMemory<byte>>();
        var from = start;
        foreach (var cut in cuts)
        {
            if (cut <= from || cut >= end) continue;
            chunks.Add(data.AsMemory(from, cut - from));
            from = cut;
        }
        chunks.Add(data.AsMemory(from, end - from));
        return Sequence([.. chunks]);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
