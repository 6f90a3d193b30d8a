using System.Globalization;
using Candor.Server.Core;
using Candor.Server.Modules.Policy;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Upload;

/// <summary>
/// HTTP File Upload (XEP-0363) as a service at its own domain (UploadDomain, upload.DOMAIN by default): accounts of
/// this server ask it for slots, then PUT and GET the file over the server's HTTP listeners (<see cref="UploadHttp"/>).
/// Files are sealed at rest and deleted after UploadRetentionDays.
/// </summary>
public sealed class UploadModule : IModule
{
    public const string Namespace = "urn:xmpp:http:upload:0";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0363", "1.1.0", "at UploadDomain; files sealed at rest, deleted after UploadRetentionDays"),
    ];

    public void Register(XmppServer server)
    {
        var domain = server.Options.UploadDomain;
        if (string.IsNullOrEmpty(domain)) return;
        var storage = (SealedStorage)server.Storage;
        var service = new UploadService(server.Options, storage.Keys, storage.Files.UploadsPath, server.LoggerFactory.CreateLogger<UploadService>());
        server.Uploads = service;
        server.Disco.ServerItems.Add((Jid.Parse(domain), "HTTP File Upload"));
        server.Components[domain] = ev => HandleAsync(server, service, ev);
    }

    /// <summary>The PUT and GET endpoints, when the service is on.</summary>
    public static void MapEndpoints(IEndpointRouteBuilder app, XmppServer server, Func<string> baseUrl)
    {
        if (server.Uploads is not { } service) return;
        service.BaseUrl = baseUrl;
        UploadHttp.Map(app, service, server.LoggerFactory.CreateLogger(typeof(UploadHttp)));
    }

    private static async ValueTask HandleAsync(XmppServer server, UploadService service, StanzaEvent ev)
    {
        var payload = ev.Stanza.FirstElement;
        if (!ev.Stanza.IsIq() || ev.Type != "get" || payload is null || ev.To.Local is not null)
        {
            if (ev.Stanza.IsIq() && ev.Type is "result" or "error") return;
            await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable, "The upload service answers disco#info, disco#items and slot requests (XEP-0363).");
            return;
        }
        var request = new IqRequest(ev, payload);
        var reply = payload switch
        {
            _ when payload.Is("query", Ns.DiscoInfo) => Info(server, request),
            _ when payload.Is("query", Ns.DiscoItems) => request.Result(new Element("query", Ns.DiscoItems)),
            _ when payload.Is("request", Namespace) => RequestSlot(server, service, request),
            _ => request.Error(StanzaError.ServiceUnavailable),
        };
        await server.Router.DeliverAsync(reply, ev.To, ev.From);
    }

    private static Element Info(XmppServer server, IqRequest request)
    {
        if (request.Payload.GetAttribute("node") is not null) return request.Error(StanzaError.ItemNotFound, "no such node");
        var query = new Element("query", Ns.DiscoInfo);
        query.AddChild("identity").SetAttribute("category", "store").SetAttribute("type", "file").SetAttribute("name", "HTTP File Upload");
        query.AddChild("feature").SetAttribute("var", Ns.DiscoInfo);
        query.AddChild("feature").SetAttribute("var", Namespace);
        var form = DataForms.Result(Namespace);
        DataForms.Field(form, "max-file-size", server.Options.UploadMaxBytes.ToString(CultureInfo.InvariantCulture));
        query.Add(form);
        return request.Result(query);
    }

    private static Element RequestSlot(XmppServer server, UploadService service, IqRequest request)
    {
        var options = server.Options;
        if (request.From.Domain != server.Domain.Domain || request.From.Local is null)
            return request.Error(StanzaError.NotAllowed, "Only accounts of this server may upload.");
        var payload = request.Payload;
        var fileName = UploadHttp.SafeFileName(payload.GetAttribute("filename"));
        if (fileName is null || !long.TryParse(payload.GetAttribute("size"), NumberStyles.None, CultureInfo.InvariantCulture, out var size))
            return request.Error(StanzaError.BadRequest, "A slot request names the file (filename) and its size in bytes (size).");
        if (size > options.UploadMaxBytes)
        {
            var tooLarge = new Element("file-too-large", Namespace);
            tooLarge.AddChild("max-file-size").AddText(options.UploadMaxBytes.ToString(CultureInfo.InvariantCulture));
            var error = Stanza.ErrorFor(request.Stanza, StanzaError.NotAcceptable, $"The file is larger than the largest upload allowed, {options.UploadMaxBytes} bytes.", tooLarge);
            return error.SetAttribute("from", request.To.ToString()).SetAttribute("to", request.From.ToString());
        }
        var type = payload.GetAttribute("content-type");
        if (type is not null && !UploadHttp.IsMediaType(type))
            return request.Error(StanzaError.BadRequest, "content-type is not a MIME type.");
        var (token, refusal) = service.CreateSlot(new UploadInfo(request.From.Local, size, type ?? "application/octet-stream", fileName, DateTimeOffset.UtcNow));
        if (token is null) return request.Error(StanzaError.ResourceConstraint, refusal);
        var url = service.Url(token, fileName);
        var slot = new Element("slot", Namespace);
        slot.AddChild("put").SetAttribute("url", url);
        slot.AddChild("get").SetAttribute("url", url);
        return request.Result(slot);
    }
}
