namespace Candor.Server.Storage;

public enum RecordShape : byte
{
    KeyValue = (byte)'k',
    Map = (byte)'m',
    Archive = (byte)'a',
    /// <summary>An archive body shared by several archive items (<see cref="ArchiveBody"/>): no account, named by its key.</summary>
    ArchiveBody = (byte)'b',
}

/// <summary>
/// One stored record as the backend holds it. <see cref="Name"/> is the map key or the archive's 'with'
/// (empty for key-value records); <see cref="Row"/> identifies the record within its shape.
/// </summary>
public readonly record struct RawRecord(RecordShape Shape, long Row, string Store, string User, string Name, string Value);

/// <summary>
/// What the sealing layer needs from a backend beyond the store shapes: every record, to seal an old plaintext
/// database (migration) and to re-seal under a new key (rotation), whatever store it belongs to.
/// </summary>
public interface IRawRecords
{
    /// <summary>
    /// Calls <paramref name="rewrite"/> on every record and stores what it returns instead (nothing when null),
    /// a page at a time, each page in one write transaction so that concurrent writers wait rather than
    /// interleave. With <paramref name="insert"/> (a key-value record added after the rewrite) everything
    /// commits together or not at all. Returns the number of records rewritten.
    /// </summary>
    Task<long> RewriteAsync(Func<RawRecord, RawRecord?> rewrite, RawRecord? insert);

    /// <summary>Calls <paramref name="visit"/> on every record (reads only).</summary>
    Task ScanAsync(Action<RawRecord> visit);

    /// <summary>Rebuilds the files so that no page still holds a value since overwritten (after a migration).</summary>
    Task CompactAsync();

    /// <summary>How many items each archive-shaped store holds (all accounts together), by store name.</summary>
    Task<IReadOnlyDictionary<string, long>> CountArchiveItemsAsync();

    /// <summary>Makes every committed write durable against a power failure, not only a crash of the process.</summary>
    Task FlushAsync();
}

/// <summary>
/// The generic tables as both SQL backends lay them out, the column that holds each shape's name, and which rows
/// hold a record: an archive item that refers to a shared body holds only a binding to it (no sealed value), and the
/// body is a record of its own, without an account.
/// </summary>
internal static class RawTables
{
    public const int PageSize = 500;

    public static readonly (RecordShape Shape, string Table, string Name, string Where)[] All =
    [
        (RecordShape.KeyValue, "keyval", "''", ""),
        (RecordShape.Map, "map", "key", ""),
        (RecordShape.Archive, "archive", "with_jid", " AND body IS NULL"),
        (RecordShape.ArchiveBody, "archive_body", "key", ""),
    ];
}
