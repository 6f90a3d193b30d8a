using System.Net;
using Candor.Server.Connections;
using Candor.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.FileProviders;

namespace Candor.Server.Web;

/// <summary>
/// The bundled web client at <c>/</c>: Converse.js, pinned in the repository under <c>web/converse/</c> and
/// copied beside the executable by the build (<c>web/</c> next to candor.dll). The page is <c>web/index.html</c>
/// with the domain and the WebSocket and BOSH URLs of the request filled in, under a Content-Security-Policy that lets
/// the browser talk to this server only.
/// </summary>
public static class WebClientEndpoint
{
    /// <summary>Where the build puts the web folder: beside the executable.</summary>
    public static string DefaultRoot => Path.Combine(AppContext.BaseDirectory, "web");

    /// <param name="uploadBaseUrl">Where uploaded files are (XEP-0363), or null without uploads: the page may send files there and show pictures from there.</param>
    public static void Map(WebApplication app, ServerOptions options, Func<string>? uploadBaseUrl)
    {
        var root = string.IsNullOrEmpty(options.WebRoot) ? DefaultRoot : Path.GetFullPath(options.WebRoot);
        var template = Path.Combine(root, "index.html");
        if (!options.WebClient || !File.Exists(template))
        {
            var why = options.WebClient ? $"the web client is missing ({template} not found)" : "the web client is turned off";
            app.MapGet("/", () => Results.Text($"Candor XMPP server for {options.Domain}; {why}.\n"));
            return;
        }

        var types = new FileExtensionContentTypeProvider();
        types.Mappings[".wasm"] = "application/wasm";
        types.Mappings[".ttf"] = "font/ttf";
        foreach (var folder in new[] { "converse", "candor" })
        {
            app.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = new PhysicalFileProvider(Path.Combine(root, folder)),
                RequestPath = "/" + folder,
                ContentTypeProvider = types,
                OnPrepareResponse = c => c.Context.Response.Headers.XContentTypeOptions = "nosniff",
            });
        }

        // Read once: the page is small and changes only with a new build.
        var page = File.ReadAllText(template);
        app.MapGet("/", (HttpContext context) => Page(context, page, options, uploadBaseUrl?.Invoke()));
        app.MapGet("/index.html", (HttpContext context) => Page(context, page, options, uploadBaseUrl?.Invoke()));
    }

    private static IResult Page(HttpContext context, string template, ServerOptions options, string? uploadBaseUrl)
    {
        var request = context.Request;
        var remote = context.Connection.RemoteIpAddress;
        // Plain ws:// is refused to other machines (WebSocketEndpoint): send them to the HTTPS port instead
        // of a login page that cannot connect.
        if (!request.IsHttps && !options.AllowPlaintext && options.HttpsPort > 0 && (remote is null || !IPAddress.IsLoopback(remote)))
            return Results.Redirect($"https://{request.Host.Host}:{options.HttpsPort}/");

        var websocket = WebSocketEndpoint.Url(context);
        var uploads = uploadBaseUrl is null ? null : new Uri(uploadBaseUrl);
        var uploadOrigin = uploads is null ? "" : " " + uploads.GetLeftPart(UriPartial.Authority);
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = string.Join("; ",
            "default-src 'none'",
            "script-src 'self' 'wasm-unsafe-eval'", // WebAssembly: the OMEMO crypto library
            "style-src 'self' 'unsafe-inline'",     // Converse sets style attributes; styles cannot fetch anything under img-src/font-src
            $"img-src 'self' data: blob:{uploadOrigin}",  // avatars arrive as data; pictures sent through this server's uploads
            $"media-src 'self' blob:{uploadOrigin}",
            "font-src 'self'",
            $"connect-src 'self' {websocket}{uploadOrigin}",
            "worker-src 'self'",
            "manifest-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'");
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-store";
        var html = template
            .Replace("{{domain}}", WebUtility.HtmlEncode(options.Domain))
            .Replace("{{websocket_url}}", WebUtility.HtmlEncode(websocket))
            .Replace("{{bosh_url}}", WebUtility.HtmlEncode(BoshEndpoint.Url(context)))
            .Replace("{{upload_host}}", WebUtility.HtmlEncode(uploads?.Host ?? ""))
            .Replace("{{allow_registration}}", options.AllowRegistration ? "true" : "false");
        return Results.Content(html, "text/html; charset=utf-8");
    }
}
