using System.Net;
using System.Text.Json;
using Candor.Server.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Candor.Server.Connections;

/// <summary>
/// XMPP over WebSocket at <c>/xmpp-websocket</c> (RFC 7395) and its discovery, with BOSH's, through host-meta (XEP-0156).
/// Over plain HTTP only loopback clients may use it (a browser on the same machine), unless plain text is
/// allowed; everyone else uses wss:// on the HTTPS port.
/// </summary>
public static class WebSocketEndpoint
{
    public const string Path = "/xmpp-websocket";
    private const string AltConnections = "urn:xmpp:alt-connections:websocket";

    /// <param name="httpsPort">The port of the HTTPS listener once it listens, or -1 when there is none.</param>
    public static void Map(WebApplication app, XmppServer server, TlsSettings tls, Func<int> httpsPort)
    {
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(60) });
        app.Map(Path, (HttpContext context) => AcceptAsync(context, server, tls));
        app.MapGet("/.well-known/host-meta", (HttpContext context) =>
            Results.Text($"""
                <?xml version='1.0' encoding='utf-8'?>
                <XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>
                {string.Concat(Links(context, server, httpsPort()).Select(link => $"  <Link rel='{link.Rel}' href='{link.Href}'/>\n"))}</XRD>
                """, "application/xrd+xml"));
        app.MapGet("/.well-known/host-meta.json", (HttpContext context) =>
            Results.Text(JsonSerializer.Serialize(new { links = Links(context, server, httpsPort()).Select(link => new { rel = link.Rel, href = link.Href }) }), "application/json"));
    }

    /// <summary>The WebSocket URL for the scheme and host the request came in on.</summary>
    public static string Url(HttpContext context) =>
        $"{(context.Request.IsHttps ? "wss" : "ws")}://{context.Request.Host}{Path}";

    /// <summary>The WebSocket and BOSH endpoints a requester can use (XEP-0156), WebSocket first.</summary>
    public static IEnumerable<(string Rel, string Href)> Links(HttpContext context, XmppServer server, int httpsPort) =>
        Urls(context, server, httpsPort, "ws", Path).Select(url => (AltConnections, url))
            .Concat(Urls(context, server, httpsPort, "http", BoshEndpoint.Path).Select(url => (BoshEndpoint.AltConnections, url)));

    /// <summary>
    /// The URLs of an endpoint a requester can use: the one of the scheme it asked on when it may use it, then the
    /// secure one on the HTTPS port — never a plain one that would refuse it.
    /// </summary>
    private static IEnumerable<string> Urls(HttpContext context, XmppServer server, int httpsPort, string plainScheme, string path)
    {
        if (context.Request.IsHttps || MayUsePlain(context, server))
            yield return $"{plainScheme}{(context.Request.IsHttps ? "s" : "")}://{context.Request.Host}{path}";
        if (!context.Request.IsHttps && httpsPort >= 0)
            yield return $"{plainScheme}s://{new HostString(context.Request.Host.Host, httpsPort)}{path}";
    }

    internal static bool MayUsePlain(HttpContext context, XmppServer server) =>
        server.Options.AllowPlaintext || context.Connection.RemoteIpAddress is { } remote && IPAddress.IsLoopback(remote);

    private static async Task AcceptAsync(HttpContext context, XmppServer server, TlsSettings tls)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            await context.Response.WriteAsync("XMPP over WebSocket (RFC 7395): connect with the 'xmpp' subprotocol.\n");
            return;
        }
        if (!context.WebSockets.WebSocketRequestedProtocols.Contains(WebSocketC2sConnection.SubProtocol))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("The WebSocket subprotocol must be 'xmpp' (RFC 7395 §3.1).\n");
            return;
        }
        if (!context.Request.IsHttps && !MayUsePlain(context, server))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync("Use wss:// on the HTTPS port: plain ws:// is for this machine only.\n");
            return;
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = WebSocketC2sConnection.SubProtocol });
        await new WebSocketC2sConnection(server, socket, context, tls).RunAsync();
    }
}
