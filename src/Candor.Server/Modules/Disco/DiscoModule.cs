using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Disco;

/// <summary>Service discovery (XEP-0030) of the server and of accounts, with XEP-0128 extensions.</summary>
public sealed class DiscoModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0030", "2.5rc3", "disco#info and disco#items for the server and accounts"),
        new("XEP-0128", "1.0.1", "extended information forms in the server's disco#info"),
    ];

    public void Register(XmppServer server)
    {
        server.Disco.ServerIdentities.Add(("server", "im", "Candor"));
        server.Disco.ServerFeatures.Add(Ns.DiscoInfo);
        server.Disco.ServerFeatures.Add(Ns.DiscoItems);
        server.Disco.AccountFeatures.Add(Ns.DiscoInfo);
        server.Disco.AccountFeatures.Add(Ns.DiscoItems);
        server.Iq.Register(IqScope.Server, "get", "query", Ns.DiscoInfo, request => ServerInfo(server, request));
        server.Iq.Register(IqScope.Server, "get", "query", Ns.DiscoItems, request => ServerItems(server, request));
        server.Iq.Register(IqScope.Account, "get", "query", Ns.DiscoInfo, request => AccountInfo(server, request));
        server.Iq.Register(IqScope.Account, "get", "query", Ns.DiscoItems, request => AccountItems(server, request));
    }

    private static ValueTask<Element?> ServerInfo(XmppServer server, IqRequest request)
    {
        if (request.Payload.GetAttribute("node") is not null)
            return ValueTask.FromResult<Element?>(request.Error(StanzaError.ItemNotFound, "no such node"));
        var query = new Element("query", Ns.DiscoInfo);
        foreach (var (category, type, name) in server.Disco.ServerIdentities)
            query.AddChild("identity").SetAttribute("category", category).SetAttribute("type", type).SetAttribute("name", name);
        foreach (var feature in server.Disco.ServerFeatures)
            query.AddChild("feature").SetAttribute("var", feature);
        foreach (var extension in server.Disco.ServerExtensions) query.Add(extension());
        return ValueTask.FromResult<Element?>(request.Result(query));
    }

    private static async ValueTask<Element?> AccountInfo(XmppServer server, IqRequest request)
    {
        if (request.Payload.GetAttribute("node") is not null)
            return server.Disco.AccountNodeInfo is { } nodeInfo && await nodeInfo(request) is { } answer
                ? answer : request.Error(StanzaError.ItemNotFound, "no such node");
        var query = new Element("query", Ns.DiscoInfo);
        query.AddChild("identity").SetAttribute("category", "account").SetAttribute("type", "registered");
        foreach (var (category, type, name) in server.Disco.AccountIdentities)
            query.AddChild("identity").SetAttribute("category", category).SetAttribute("type", type).SetAttribute("name", name);
        foreach (var feature in server.Disco.AccountFeatures)
            query.AddChild("feature").SetAttribute("var", feature);
        return request.Result(query);
    }

    private static async ValueTask<Element?> AccountItems(XmppServer server, IqRequest request)
    {
        if (request.Payload.GetAttribute("node") is not null || server.Disco.AccountItems is not { } items) return await Items(request);
        var query = new Element("query", Ns.DiscoItems);
        foreach (var item in await items(request)) query.Add(item);
        return request.Result(query);
    }

    private static ValueTask<Element?> ServerItems(XmppServer server, IqRequest request)
    {
        var node = request.Payload.GetAttribute("node");
        if (node is not null && server.Disco.ServerItemNodes.TryGetValue(node, out var items))
            return ValueTask.FromResult<Element?>(request.Result(items(request)));
        if (node is not null) return Items(request);
        var query = new Element("query", Ns.DiscoItems);
        foreach (var (jid, name) in server.Disco.ServerItems)
            query.AddChild("item").SetAttribute("jid", jid.ToString()).SetAttribute("name", name);
        return ValueTask.FromResult<Element?>(request.Result(query));
    }

    private static ValueTask<Element?> Items(IqRequest request) =>
        ValueTask.FromResult<Element?>(request.Payload.GetAttribute("node") is not null
            ? request.Error(StanzaError.ItemNotFound, "no such node")
            : request.Result(new Element("query", Ns.DiscoItems)));
}
