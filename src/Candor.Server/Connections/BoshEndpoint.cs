using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Connections;

/// <summary>
/// XMPP over BOSH at <c>/http-bind</c> (XEP-0124, XEP-0206) on the HTTP and HTTPS listeners, for clients that
/// cannot keep a WebSocket open. Every request is a POST of one &lt;body/&gt; of at most MaxStanzaBytes; the
/// sessions (<see cref="BoshC2sConnection"/>) are C2S streams like the TCP and WebSocket ones. As for WebSocket,
/// plain HTTP is for this machine only unless plain text is allowed.
/// </summary>
public sealed partial class BoshEndpoint
{
    public const string Path = "/http-bind";
    public const string AltConnections = "urn:xmpp:alt-connections:xbosh";

    private readonly XmppServer _server;
    private readonly TlsSettings _tls;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, BoshC2sConnection> _sessions = new();

    private BoshEndpoint(XmppServer server, TlsSettings tls)
    {
        _server = server;
        _tls = tls;
        _logger = server.LoggerFactory.CreateLogger<BoshEndpoint>();
    }

    public static void Map(WebApplication app, XmppServer server, TlsSettings tls)
    {
        var endpoint = new BoshEndpoint(server, tls);
        app.MapPost(Path, endpoint.HandleAsync);
        app.MapGet(Path, () => Results.Text("XMPP over BOSH (XEP-0206): POST a <body/> to this URL.\n", statusCode: StatusCodes.Status405MethodNotAllowed));
    }

    /// <summary>The BOSH URL for the scheme and host the request came in on.</summary>
    public static string Url(HttpContext context) =>
        $"{(context.Request.IsHttps ? "https" : "http")}://{context.Request.Host}{Path}";

    private async Task HandleAsync(HttpContext context)
    {
        if (!context.Request.IsHttps && !WebSocketEndpoint.MayUsePlain(context, _server))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync("Use https:// on the HTTPS port: plain http:// is for this machine only.\n");
            return;
        }
        var response = await RespondAsync(context);
        context.Response.ContentType = "text/xml; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.ContentLength = response.Length;
        // A client that dropped the request gets the same response when it sends the rid again.
        if (!context.RequestAborted.IsCancellationRequested)
            await context.Response.Body.WriteAsync(response, CancellationToken.None);
    }

    private async Task<byte[]> RespondAsync(HttpContext context)
    {
        var remote = context.Connection.RemoteIpAddress;
        var limit = _server.Options.MaxStanzaBytes;
        if (context.Request.ContentLength > limit)
            return Refuse(remote, BoshErrors.PolicyViolation, $"a request body of {context.Request.ContentLength} bytes (at most {limit})");
        var bytes = await ReadBodyAsync(context.Request.BodyReader, limit, context.RequestAborted);
        if (bytes is null) return Refuse(remote, BoshErrors.PolicyViolation, $"a request body over {limit} bytes");
        Element body;
        try
        {
            body = WebSocketC2sConnection.ParseOne(new XmppStreamParser(_server.Xml, fragmentMode: true), new ReadOnlySequence<byte>(bytes));
        }
        catch (Exception e) when (e is XmlStreamException or StreamErrorException)
        {
            return Refuse(remote, BoshErrors.BadRequest, "the request is not one well-formed XML element: " + e.Message);
        }
        if (!body.Is("body", BoshC2sConnection.Namespace))
            return Refuse(remote, BoshErrors.BadRequest, $"<{body.Name}/> in {body.Namespace} instead of a BOSH <body/>");
        if (!long.TryParse(body.GetAttribute("rid"), NumberStyles.None, CultureInfo.InvariantCulture, out var rid) || rid <= 0 || rid >= 1L << 53)
            return Refuse(remote, BoshErrors.BadRequest, "'rid' must be a positive integer below 2^53");

        if (body.GetAttribute("sid") is not { } sid) return await CreateAsync(context, body, rid);
        if (!_sessions.TryGetValue(sid, out var session)) return Refuse(remote, BoshErrors.ItemNotFound, "an unknown or ended sid");
        return await session.RequestAsync(body, rid);
    }

    private Task<byte[]> CreateAsync(HttpContext context, Element body, long rid)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (body.GetAttribute("to") is not { } to || !Jid.TryParse(to, out var host) || host != _server.Domain)
            return Task.FromResult(Refuse(remote, BoshErrors.HostUnknown, $"a session for '{body.GetAttribute("to")}' (this server serves {_server.Domain})"));
        var sid = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var session = new BoshC2sConnection(_server, remote, context.Request.IsHttps, _tls, sid, body, rid);
        _sessions[sid] = session;
        _ = RunAsync(session);
        Log.Created(_logger, sid, session.RemoteAddress, session.Wait, session.Hold);
        return session.RequestAsync(body, rid);
    }

    private async Task RunAsync(BoshC2sConnection session)
    {
        await session.RunAsync();
        // Kept a little longer, so that a request resent after a dropped connection still finds its terminal body.
        await Task.Delay(TimeSpan.FromSeconds(session.Wait));
        Forget(session);
    }

    private void Forget(BoshC2sConnection session)
    {
        if (_sessions.TryRemove(new KeyValuePair<string, BoshC2sConnection>(session.Sid, session))) Log.Ended(_logger, session.Sid);
    }

    private byte[] Refuse(System.Net.IPAddress? remote, string condition, string why)
    {
        Log.Refused(_logger, remote, condition, why);
        return System.Text.Encoding.UTF8.GetBytes($"<body xmlns='{BoshC2sConnection.Namespace}' type='terminate' condition='{condition}'/>");
    }

    /// <summary>The whole request body, or null when it is longer than <paramref name="limit"/>.</summary>
    private static async Task<byte[]?> ReadBodyAsync(PipeReader reader, int limit, CancellationToken token)
    {
        while (true)
        {
            var result = await reader.ReadAsync(token);
            var buffer = result.Buffer;
            if (buffer.Length > limit)
            {
                reader.AdvanceTo(buffer.End);
                return null;
            }
            if (result.IsCompleted)
            {
                var bytes = buffer.ToArray();
                reader.AdvanceTo(buffer.End);
                return bytes;
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "BOSH session {Sid} from {Address} (wait {Wait} s, hold {Hold})")]
        public static partial void Created(ILogger logger, string sid, System.Net.IPAddress address, int wait, int hold);

        [LoggerMessage(Level = LogLevel.Debug, Message = "BOSH session {Sid} ended")]
        public static partial void Ended(ILogger logger, string sid);

        [LoggerMessage(Level = LogLevel.Information, Message = "BOSH request from {Address} refused with {Condition}: {Why}")]
        public static partial void Refused(ILogger logger, System.Net.IPAddress? address, string condition, string why);
    }
}
