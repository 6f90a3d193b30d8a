using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.AdHoc;

/// <summary>
/// Ad-hoc commands (XEP-0050), the menu ordinary clients already show: the commands other modules add to
/// <see cref="DiscoRegistry.Commands"/> are listed under the commands node of the server's disco#items and run
/// with one execute (after a confirmation form for those that cannot be undone). Commands act on the requesting account only.
/// </summary>
public sealed class AdHocModule : IModule
{
    public const string Namespace = "http://jabber.org/protocol/commands";

    public IReadOnlyList<Protocol> Protocols { get; } = [new("XEP-0050", "1.3.0", "commands on the server for the requesting account: one step, or a confirmation form first for what cannot be undone")];

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
            return request.Error(StanzaError.BadRequest, "these commands take execute or complete, never next or prev");
        if (request.From.Local is null) return request.Error(StanzaError.Forbidden, "for accounts of this server only");
        if (command.Confirmation is not null && Confirmed(request.Payload) is not true)
            return request.Result(Confirmed(request.Payload) is false
                ? Completed(node, request.Payload.GetAttribute("sessionid"), "Nothing was done.")
                : ConfirmationForm(node, command.Confirmation));
        var result = await command.Execute(request.From);
        var element = Completed(node, request.Payload.GetAttribute("sessionid") ?? Guid.NewGuid().ToString("N"), result.Note);
        if (result.Form is not null) element.Add(result.Form);
        return request.Result(element);
    }

    /// <summary>The submitted answer to a confirmation form: null when no form was submitted.</summary>
    private static bool? Confirmed(Element command)
    {
        var form = command.GetChild("x", Ns.DataForms);
        if (form?.GetAttribute("type") != "submit") return null;
        var value = form.Elements.FirstOrDefault(f => f.GetAttribute("var") == "confirm")?.GetChildText("value", Ns.DataForms);
        return value is "1" or "true";
    }

    private static Element ConfirmationForm(string node, string question)
    {
        var element = Command(node, Guid.NewGuid().ToString("N"), "executing");
        element.AddChild("actions").SetAttribute("execute", "complete").AddChild("complete");
        var form = new Element("x", Ns.DataForms).SetAttribute("type", "form");
        element.Add(form);
        form.AddChild("title").AddText(question);
        form.AddChild("field").SetAttribute("var", "confirm").SetAttribute("type", "boolean").SetAttribute("label", question)
            .AddChild("value").AddText("false");
        return element;
    }

    private static Element Completed(string node, string? sessionId, string note)
    {
        var element = Command(node, sessionId, "completed");
        element.AddChild("note").SetAttribute("type", "info").AddText(note);
        return element;
    }

    private static Element Command(string node, string? sessionId, string status) =>
        new Element("command", Namespace).SetAttribute("node", node).SetAttribute("sessionid", sessionId).SetAttribute("status", status);
}
