using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Candor.Server.Audit;

/// <summary>
/// The operator log over HTTP for outside monitors, after RFC 9162's get-sth, get-sth-consistency and get-entries:
/// the latest signed head, a consistency proof between two sizes, and entries with an inclusion proof each
/// (against the latest head). Entries not yet covered by a signed head are not served.
/// </summary>
public static class AuditEndpoints
{
    public const string Path = "/.well-known/candor/audit";
    public const int MaxEntries = 1000;

    public static void Map(IEndpointRouteBuilder app, AuditLog log)
    {
        app.MapGet(Path, context => Head(context, log));
        app.MapGet(Path + "/consistency", context => Consistency(context, log));
        app.MapGet(Path + "/entries", context => Entries(context, log));
    }

    private static Task Head(HttpContext context, AuditLog log) =>
        log.LatestHead is { } head ? WriteJson(context, head.Write) : Error(context, StatusCodes.Status503ServiceUnavailable, "no tree head signed yet");

    private static Task Consistency(HttpContext context, AuditLog log)
    {
        if (log.LatestHead is not { } head) return Error(context, StatusCodes.Status503ServiceUnavailable, "no tree head signed yet");
        if (!TryRange(context, "from", "to", head.Size, out var from, out var to) || from > to)
            return Error(context, StatusCodes.Status400BadRequest, $"give from and to with 0 <= from <= to <= {head.Size} (the size of the latest head)");
        var proof = MerkleTree.ConsistencyProof(log.LeafHashes(to), from, to);
        return WriteJson(context, json =>
        {
            json.WriteStartObject();
            json.WriteNumber("from", from);
            json.WriteNumber("to", to);
            WriteHashes(json, "proof", proof);
            json.WriteEndObject();
        });
    }

    private static Task Entries(HttpContext context, AuditLog log)
    {
        if (log.LatestHead is not { } head) return Error(context, StatusCodes.Status503ServiceUnavailable, "no tree head signed yet");
        if (!TryRange(context, "start", "end", head.Size - 1, out var start, out var end) || start > end)
            return Error(context, StatusCodes.Status400BadRequest, $"give start and end with 0 <= start <= end < {head.Size} (the size of the latest head)");
        end = Math.Min(end, start + MaxEntries - 1);
        var leaves = log.LeafHashes(head.Size);
        var entries = log.Read(start, end + 1);
        return WriteJson(context, json =>
        {
            json.WriteStartObject();
            json.WritePropertyName("head");
            head.Write(json);
            json.WriteStartArray("entries");
            foreach (var entry in entries) WriteWithProof(json, entry, leaves, head.Size);
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary>An entry, its leaf hash and its inclusion proof in the tree of <paramref name="size"/> leaves.</summary>
    public static void WriteWithProof(Utf8JsonWriter json, AuditEntry entry, IReadOnlyList<byte[]> leaves, long size)
    {
        json.WriteStartObject();
        json.WritePropertyName("entry");
        entry.Write(json, leafHash: true);
        json.WriteNumber("tree_size", size);
        WriteHashes(json, "inclusion_proof", MerkleTree.InclusionProof(leaves, entry.Index, size));
        json.WriteEndObject();
    }

    private static void WriteHashes(Utf8JsonWriter json, string name, IEnumerable<byte[]> hashes)
    {
        json.WriteStartArray(name);
        foreach (var hash in hashes) json.WriteStringValue(Convert.ToBase64String(hash));
        json.WriteEndArray();
    }

    private static bool TryRange(HttpContext context, string first, string second, long max, out long from, out long to)
    {
        to = 0;
        return long.TryParse(context.Request.Query[first], out from) && long.TryParse(context.Request.Query[second], out to)
            && from >= 0 && to <= max;
    }

    private static async Task WriteJson(HttpContext context, Action<Utf8JsonWriter> write)
    {
        var response = context.Response;
        response.ContentType = "application/json; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers.AccessControlAllowOrigin = "*";
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, AuditEntry.JsonOptions)) write(json);
        response.ContentLength = buffer.Length;
        await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }

    private static Task Error(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        return WriteJson(context, json =>
        {
            json.WriteStartObject();
            json.WriteString("error", message);
            json.WriteEndObject();
        });
    }
}
