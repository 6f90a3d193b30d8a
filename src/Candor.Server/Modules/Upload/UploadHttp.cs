using System.Globalization;
using System.Net.Http.Headers;
using Candor.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Upload;

/// <summary>
/// PUT and GET of uploads at /upload/TOKEN/NAME on the HTTP and HTTPS listeners. A PUT must match its slot's size and
/// type exactly and may be made once. A GET streams the file from its sealed chunks, with Range, and in a form that
/// cannot become a page of this origin: only images, audio and video are shown inline; HTML, SVG, XML and scripts are
/// served as application/octet-stream; every answer carries nosniff and a sandboxing CSP.
/// Slow senders are cut off by Kestrel's minimum request body rate (240 bytes/s after 5 s).
/// </summary>
public static class UploadHttp
{
    public const string Path = "/upload";
    private const string Csp = "default-src 'none'; sandbox; frame-ancestors 'none'";
    private const int MaxFileNameLength = 128;

    public static void Map(IEndpointRouteBuilder app, UploadService service, ILogger log)
    {
        var route = Path + "/{token}/{name}";
        app.MapMethods(route, ["PUT"], (HttpContext context, string token) => PutAsync(context, service, log, token));
        app.MapMethods(route, ["GET", "HEAD"], (HttpContext context, string token) => GetAsync(context, service, log, token));
        app.MapMethods(route, ["OPTIONS"], (HttpContext context) =>
        {
            Common(context.Response);
            context.Response.Headers.AccessControlAllowMethods = "GET, HEAD, PUT, OPTIONS";
            context.Response.Headers.AccessControlAllowHeaders = "Content-Type";
            context.Response.Headers.AccessControlMaxAge = "86400";
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });
    }

    private static async Task PutAsync(HttpContext context, UploadService service, ILogger log, string token)
    {
        var request = context.Request;
        var response = context.Response;
        Common(response);
        var remote = context.Connection.RemoteIpAddress;
        switch (service.TryClaim(token, out var slot))
        {
            case UploadService.Claim.Stored:
                log.LogInformation("upload refused from {Address}: the slot was used already", remote);
                await Refuse(response, StatusCodes.Status409Conflict, "This slot was used already; request a new slot for another upload.");
                return;
            case UploadService.Claim.Unknown:
                log.LogInformation("upload refused from {Address}: no such slot, or it expired", remote);
                await Refuse(response, StatusCodes.Status403Forbidden, $"No such upload slot, or it expired (slots last {UploadService.SlotLifetime.TotalMinutes:0} minutes).");
                return;
        }
        var refusal = request.ContentLength switch
        {
            null => (StatusCodes.Status411LengthRequired, $"Send Content-Length: {slot!.Size}, the size the slot was requested for."),
            { } length when length > slot!.Size => (StatusCodes.Status413PayloadTooLarge, $"The slot is for {slot.Size} bytes, not {length}."),
            { } length when length != slot.Size => (StatusCodes.Status400BadRequest, $"The slot is for {slot.Size} bytes, not {length}."),
            _ when !string.Equals(request.ContentType ?? "application/octet-stream", slot.ContentType, StringComparison.OrdinalIgnoreCase)
                => (StatusCodes.Status400BadRequest, $"The slot is for Content-Type {slot.ContentType}, not {request.ContentType ?? "none"}."),
            _ => (0, ""),
        };
        if (refusal.Item1 != 0)
        {
            service.Release(token, slot);
            log.LogInformation("upload of {Owner} refused from {Address}: {Reason}", slot.Owner, remote, refusal.Item2);
            await Refuse(response, refusal.Item1, refusal.Item2);
            return;
        }
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = slot.Size;
        try
        {
            await service.StoreAsync(token, slot, request.Body, context.RequestAborted);
        }
        catch (Exception e) when (e is BadHttpRequestException or IOException or OperationCanceledException or InvalidDataException)
        {
            // Too slow (Kestrel's minimum data rate), too short, or the client went away: the slot may be tried again.
            service.Release(token, slot);
            log.LogInformation("upload of {Owner} from {Address} not completed: {Reason}", slot.Owner, remote, e.Message);
            if (!response.HasStarted && !context.RequestAborted.IsCancellationRequested)
                await Refuse(response, e is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status400BadRequest, $"The upload was not completed: {e.Message}");
            return;
        }
        log.LogInformation("upload of {Owner} stored: {Size} bytes", slot.Owner, slot.Size);
        response.StatusCode = StatusCodes.Status201Created;
    }

    private static async Task GetAsync(HttpContext context, UploadService service, ILogger log, string token)
    {
        var response = context.Response;
        Common(response);
        if (service.Find(token, out _) is not { } info)
        {
            await Refuse(response, StatusCodes.Status404NotFound, "No such file; uploads are deleted after the retention period the server's policy states.");
            return;
        }
        var (type, inline) = SafeType(info.ContentType);
        response.ContentType = type;
        response.Headers.ContentDisposition = new ContentDispositionHeaderValue(inline ? "inline" : "attachment") { FileNameStar = info.FileName }.ToString();
        response.Headers.AcceptRanges = "bytes";
        response.Headers.CacheControl = "private, max-age=86400, immutable";
        long offset = 0, count = info.Size;
        if (context.Request.Headers.Range.Count > 0 && RangeHeaderValue.TryParse(context.Request.Headers.Range.ToString(), out var range)
            && range.Unit == "bytes" && range.Ranges.Count == 1)
        {
            var item = range.Ranges.First();
            (offset, var end) = item.From is { } from ? (from, Math.Min(item.To ?? info.Size - 1, info.Size - 1)) : (Math.Max(0, info.Size - item.To!.Value), info.Size - 1);
            if (offset >= info.Size || end < offset)
            {
                response.Headers.ContentRange = $"bytes */{info.Size}";
                await Refuse(response, StatusCodes.Status416RangeNotSatisfiable, "The range is outside the file.");
                return;
            }
            count = end - offset + 1;
            response.StatusCode = StatusCodes.Status206PartialContent;
            response.Headers.ContentRange = $"bytes {offset}-{end}/{info.Size}";
        }
        response.ContentLength = count;
        if (HttpMethods.IsHead(context.Request.Method) || count == 0) return;
        try
        {
            await using var reader = service.Open(token);
            await reader.CopyToAsync(response.Body.WriteAsync, info.Size, offset, count, context.RequestAborted);
        }
        catch (SealedRecordException e)
        {
            log.LogError("upload of {Owner} cannot be served: {Reason}", info.Owner, e.Message);
            if (!response.HasStarted) await Refuse(response, StatusCodes.Status500InternalServerError, "The stored file failed its integrity check; the operator has been told.");
            else context.Abort();
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client went away.
        }
    }

    /// <summary>The name a file is stored and offered under: its last path segment, without control characters; null when empty.</summary>
    public static string? SafeFileName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return null;
        name = name[(name.LastIndexOfAny(['/', '\\']) + 1)..];
        name = string.Concat(name.Where(c => !char.IsControl(c) && c is not ('"' or ':' or '*' or '?' or '<' or '>' or '|'))).Trim().Trim('.');
        if (name.Length > MaxFileNameLength)
            name = name[..(char.IsHighSurrogate(name[MaxFileNameLength - 1]) ? MaxFileNameLength - 1 : MaxFileNameLength)];
        return name.Length == 0 ? "file" : name;
    }

    public static bool IsMediaType(string type) =>
        MediaTypeHeaderValue.TryParse(type, out var parsed) && parsed.MediaType is { } media && media.IndexOf('/') is > 0 and var slash && slash < media.Length - 1;

    /// <summary>
    /// The Content-Type a file is served with and whether it may be shown inline: images, audio and video are; a type a
    /// browser would run or render as a document (HTML, SVG, XML, scripts, multipart) becomes application/octet-stream.
    /// </summary>
    public static (string Type, bool Inline) SafeType(string declared)
    {
        if (!MediaTypeHeaderValue.TryParse(declared, out var parsed) || parsed.MediaType is not { } media) return ("application/octet-stream", false);
        media = media.ToLowerInvariant();
        if (media.Contains("html") || media.Contains("xml") || media.Contains("svg") || media.Contains("script") || media.StartsWith("multipart/", StringComparison.Ordinal)
            || media.StartsWith("text/", StringComparison.Ordinal) && media != "text/plain")
            return ("application/octet-stream", false);
        var inline = media.StartsWith("image/", StringComparison.Ordinal) || media.StartsWith("audio/", StringComparison.Ordinal) || media.StartsWith("video/", StringComparison.Ordinal);
        return (parsed.ToString(), inline);
    }

    private static void Common(HttpResponse response)
    {
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.ContentSecurityPolicy = Csp;
        response.Headers.AccessControlAllowOrigin = "*";
        response.Headers["Referrer-Policy"] = "no-referrer";
    }

    private static Task Refuse(HttpResponse response, int status, string reason)
    {
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        return response.WriteAsync(reason + "\n");
    }
}
