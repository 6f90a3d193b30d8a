using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Private;

/// <summary>Private XML storage (XEP-0049): one element per namespace, readable only by its account.</summary>
public sealed class PrivateModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } = [new("XEP-0049", "1.2", "listed in the server's disco#info")];

    public void Register(XmppServer server)
    {
        var store = server.Storage.OpenMap("private");
        // Clients probe the server's disco#info for it (Prosody lists it there too).
        server.Disco.ServerFeatures.Add(Ns.Private);
        server.Iq.Register(IqScope.Account, "get", "query", Ns.Private, async request =>
        {
            if (Check(request) is { } error) return error;
            var asked = request.Payload.FirstElement!;
            var stored = await store.GetAsync(request.From.Local!, Key(asked));
            return request.Result(new Element("query", Ns.Private).Add(stored is null ? new Element(asked.Name, asked.Namespace) : StoredStanza.Parse(stored)));
        });
        server.Iq.Register(IqScope.Account, "set", "query", Ns.Private, async request =>
        {
            if (Check(request) is { } error) return error;
            var data = request.Payload.FirstElement!;
            await store.SetAsync(request.From.Local!, Key(data), ElementWriter.ToXmlString(data));
            return request.Result();
        });
    }

    private static Element? Check(IqRequest request)
    {
        if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "private storage belongs to its account alone");
        var children = request.Payload.Elements.ToList();
        if (children.Count != 1) return request.Error(StanzaError.BadRequest, "exactly one child element");
        var ns = children[0].Namespace;
        if (ns is "" or Ns.Private or Ns.Client or "jabber:server")
            return request.Error(StanzaError.NotAcceptable, "that namespace cannot be stored");
        return null;
    }

    private static string Key(Element e) => "{" + e.Namespace + "}" + e.Name;
}
