using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.AdHoc;

/// <summary>
/// Ad-hoc commands (XEP-0050), the menu ordinary clients already show: the commands other modules add to
/// <see cref="DiscoRegistry.Commands"/> are listed under the commands node of the server's disco#items and run
/// with one execute. Commands act on the requesting account only.
/// </summary>
public sealed class AdHocModule : IModule
{
    public const string Namespace = "http://jabber.org/protocol/commands";

    public IReadOnlyList<Protocol> Protocols { get; } = [new("XEP-0050", "1.3.0", "one-step commands on the server, for the requesting account")];

    public void Register(XmppServer server)
    {
        server.Disco.ServerFeatures.Add(Namespace);
        server.Disco.ServerItemNodes[Namespace] = request =>
        {
            var query = new Element("query", Ns.DiscoItems).SetAttribute("node", Namespace);
            foreach (var command in server.Disco.Commands.Values)
                query.AddChild("item").SetAttribute("jid", server.Domain.ToString()).SetAttribute("node", command.Node).SetAttribute("name", command.Name);
            return query;
        };
        server.Iq.Register(IqScope.Server, "set", "command", Namespace, request => ExecuteAsync(server, request));
    }

    private static async ValueTask<Element?> ExecuteAsync(XmppServer server, IqRequest request)
    {
        var node = request.Payload.GetAttribute("node");
        if (node is null || !server.Disco.Commands.TryGetValue(node, out var command))
            return request.Error(StanzaError.ItemNotFound, "no such command");
        var action = request.Payload.GetAttribute("action") ?? "execute";
        if (action == "cancel")
            return request.Result(Command(node, request.Payload.GetAttribute("sessionid"), "canceled"));
        if (action is not ("execute" or "complete"))
            return request.Error(StanzaError.BadRequest, "these commands take one step: execute");
        if (request.From.Local is null) return request.Error(StanzaError.Forbidden, "for accounts of this server only");
        var result = await command.Execute(request.From);
        var element = Command(node, Guid.NewGuid().ToString("N"), "completed");
        element.AddChild("note").SetAttribute("type", "info").AddText(result.Note);
        if (result.Form is not null) element.Add(result.Form);
        return request.Result(element);
    }

    private static Element Command(string node, string? sessionId, string status) =>
        new Element("command", Namespace).SetAttribute("node", node).SetAttribute("sessionid", sessionId).SetAttribute("status", status);
}
