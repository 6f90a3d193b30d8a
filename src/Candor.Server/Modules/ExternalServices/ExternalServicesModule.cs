using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.ExternalServices;

/// <summary>
/// External Service Discovery (XEP-0215) of a STUN/TURN server (TurnHost), for calls set up client to client: the
/// server hands out time-limited TURN credentials by the TURN REST API convention (user name EXPIRY:ACCOUNT, password
/// base64 HMAC-SHA1 of it under the secret shared with the TURN server's static-auth-secret). Call media never passes
/// through this server. Without TurnHost nothing is advertised.
/// </summary>
public sealed class ExternalServicesModule : IModule
{
    public const string Namespace = "urn:xmpp:extdisco:2";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0215", "1.0.0", "STUN and TURN (udp, tcp; turns with TurnTlsPort) with TURN REST API credentials, when TurnHost is set"),
    ];

    public void Register(XmppServer server)
    {
        if (string.IsNullOrEmpty(server.Options.TurnHost)) return;
        server.Disco.ServerFeatures.Add(Namespace);
        server.Iq.Register(IqScope.Server, "get", "services", Namespace, request => Answer(server, request, "services"));
        server.Iq.Register(IqScope.Server, "get", "credentials", Namespace, request => Answer(server, request, "credentials"));
    }

    private static ValueTask<Element?> Answer(XmppServer server, IqRequest request, string kind)
    {
        if (request.Origin is null || request.From.Local is null)
            return ValueTask.FromResult<Element?>(request.Error(StanzaError.Forbidden, "External services are for accounts of this server."));
        var services = Services(server, request.From.Bare.ToString(), DateTimeOffset.UtcNow);
        var reply = new Element(kind, Namespace);
        if (kind == "services")
        {
            var type = request.Payload.GetAttribute("type");
            foreach (var service in services.Where(s => type is null || s.GetAttribute("type") == type)) reply.Add(service);
        }
        else
        {
            var asked = request.Payload.GetChild("service", Namespace);
            var matching = services.Where(s => s.GetAttribute("restricted") == "1"
                && s.GetAttribute("host") == asked?.GetAttribute("host") && s.GetAttribute("type") == asked?.GetAttribute("type")
                && (asked?.GetAttribute("port") is not { } port || s.GetAttribute("port") == port)).ToList();
            if (matching.Count == 0)
                return ValueTask.FromResult<Element?>(request.Error(StanzaError.ItemNotFound, "No service with credentials has that host and type."));
            foreach (var service in matching) reply.Add(service);
        }
        return ValueTask.FromResult<Element?>(request.Result(reply));
    }

    /// <summary>The services offered, TURN ones with credentials for <paramref name="account"/> valid for TurnTtlSeconds.</summary>
    public static List<Element> Services(XmppServer server, string account, DateTimeOffset now)
    {
        var options = server.Options;
        var host = options.TurnHost!;
        var expires = now.AddSeconds(options.TurnTtlSeconds);
        var (username, password) = Credentials(options.TurnSecret!, account, expires);
        var port = options.TurnPort.ToString(CultureInfo.InvariantCulture);
        var list = new List<Element>
        {
            Service(host, port, "stun", "udp"),
            Service(host, port, "turn", "udp"),
            Service(host, port, "turn", "tcp"),
        };
        if (options.TurnTlsPort > 0) list.Add(Service(host, options.TurnTlsPort.ToString(CultureInfo.InvariantCulture), "turns", "tcp"));
        foreach (var service in list.Where(s => s.GetAttribute("type") != "stun"))
            service.SetAttribute("restricted", "1").SetAttribute("username", username).SetAttribute("password", password)
                .SetAttribute("expires", expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        return list;
    }

    /// <summary>TURN REST API credentials: user name "EXPIRY:ACCOUNT" (Unix seconds), password base64 HMAC-SHA1 of it under the secret.</summary>
    public static (string Username, string Password) Credentials(string secret, string account, DateTimeOffset expires)
    {
        var username = $"{expires.ToUnixTimeSeconds()}:{account}";
        return (username, Convert.ToBase64String(HMACSHA1.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(username))));
    }

    private static Element Service(string host, string port, string type, string transport) =>
        new Element("service", Namespace).SetAttribute("host", host).SetAttribute("port", port).SetAttribute("type", type).SetAttribute("transport", transport);
}
