using System.Text;
using System.Text.Json;

namespace Candor.Server.Audit;

/// <summary>
/// Checks a log read in order, entries and signed heads interleaved (an export file, or the database): every
/// entry has the next index and the leaf hash of its fields, every head is signed by the one log key and its root
/// is the Merkle root of the entries before it. The first thing that does not fit is <see cref="Problem"/>.
/// </summary>
public sealed class AuditVerifier
{
    private readonly List<byte[]> _leaves = [];

    public string? Problem { get; private set; }
    public long Entries => _leaves.Count;
    public TreeHead? LastHead { get; private set; }
    public IReadOnlyList<byte[]> Leaves => _leaves;

    /// <summary>One line of an export: an entry with its leaf hash, or a head. False once something does not fit.</summary>
    public bool AddLine(int lineNumber, string line)
    {
        if (Problem is not null) return false;
        try
        {
            using var document = JsonDocument.Parse(line);
            var json = document.RootElement;
            if (json.ValueKind == JsonValueKind.Object && json.TryGetProperty("size", out _))
                return AddHead(TreeHead.Parse(json), $"line {lineNumber}");
            var entry = AuditEntry.Parse(json);
            var claimed = json.TryGetProperty("leaf_hash", out var hash) ? hash.GetString() : null;
            if (claimed != Convert.ToBase64String(entry.LeafHash))
                return Fail($"line {lineNumber} (entry {entry.Index}) was edited: its leaf hash does not match its fields");
            return AddEntry(entry.Index, entry.LeafHash, $"line {lineNumber}");
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return Fail($"line {lineNumber} was edited: it is not an audit entry or tree head ({e.Message})");
        }
    }

    /// <summary>An entry as stored in the database; its leaf is the hash of exactly these bytes.</summary>
    public bool AddStored(long index, string text)
    {
        if (Problem is not null) return false;
        try
        {
            var entry = AuditLog.ParseEntry(text);
            if (!entry.ToBytes().AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(text)))
                return Fail($"entry {index} was edited: it is not as the server writes it");
            if (entry.Index != index)
                return Fail($"entry {index} says it is entry {entry.Index}: entries were moved");
            return AddEntry(index, MerkleTree.LeafHash(Encoding.UTF8.GetBytes(text)), $"entry {index}");
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return Fail($"entry {index} was edited: it is not an audit entry ({e.Message})");
        }
    }

    public bool AddHead(TreeHead head, string where)
    {
        if (Problem is not null) return false;
        if (!head.SignatureValid)
            return Fail($"{where}: the tree head of size {head.Size} does not carry a valid signature");
        if (LastHead is { } previous && previous.KeyText != head.KeyText)
            return Fail($"{where}: the tree head of size {head.Size} is signed with key {head.KeyText}, earlier heads with {previous.KeyText}");
        if (head.Size > _leaves.Count)
            return Fail($"{where}: the tree head covers {head.Size} entries, but only {_leaves.Count} precede it: entries from {_leaves.Count} on were deleted");
        if (!MerkleTree.Root(_leaves, head.Size).AsSpan().SequenceEqual(head.Root))
            return Fail($"{where}: entries 0 to {head.Size - 1} do not match the tree head signed for them: one of them was changed, inserted or removed");
        LastHead = head;
        return true;
    }

    /// <summary>At the end: false when no head was seen at all (a log with entries must have one).</summary>
    public bool Finish()
    {
        if (Problem is null && LastHead is null && _leaves.Count > 0) Fail("no signed tree head: the log cannot be checked");
        return Problem is null;
    }

    private bool AddEntry(long index, byte[] leaf, string where)
    {
        if (index != _leaves.Count)
            return Fail(index > _leaves.Count
                ? $"{where}: entry {index} where entry {_leaves.Count} belongs: entries were deleted or reordered"
                : $"{where}: entry {index} again or out of order where entry {_leaves.Count} belongs: entries were inserted or reordered");
        _leaves.Add(leaf);
        return true;
    }

    private bool Fail(string problem)
    {
        Problem = problem;
        return false;
    }
}
