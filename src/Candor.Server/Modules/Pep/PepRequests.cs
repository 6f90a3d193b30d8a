using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

/// <summary>
/// The pubsub requests a PEP service answers (XEP-0060 §6-8 as profiled by XEP-0163): publish with
/// publish-options, retract, items, create, configure, default, purge, delete, and the (empty) subscription
/// and affiliation lists. Only the account itself changes its nodes; others read what the access model allows.
/// </summary>
public sealed class PepRequests(XmppServer server, PepService pep, Notifier notifier)
{
    private const int MaxNameLength = 1024;

    private string Domain => server.Domain.Domain;

    /// <summary>Called after each successful publish, with the account and the node (avatar conversion).</summary>
    public Func<string, string, ValueTask>? Published { get; set; }

    public async ValueTask<Element?> PubSubSetAsync(IqRequest request)
    {
        var payload = request.Payload;
        var action = payload.Elements.FirstOrDefault(e => e.Name != "publish-options");
        return action?.Name switch
        {
            "publish" => await PublishAsync(request, action, payload.GetChild("publish-options", PubSubNs.PubSub)),
            "retract" => await RetractAsync(request, action),
            "create" => await CreateAsync(request, action, payload.GetChild("configure", PubSubNs.PubSub)),
            "subscribe" or "unsubscribe" or "options" => Unsupported(request, action.Name == "options" ? "subscription-options" : "subscribe",
                "PEP subscriptions follow presence subscriptions and +notify caps (XEP-0163 §4)"),
            _ => request.Error(StanzaError.BadRequest, "unknown pubsub request"),
        };
    }

    public async ValueTask<Element?> PubSubGetAsync(IqRequest request)
    {
        var action = request.Payload.FirstElement;
        return action?.Name switch
        {
            "items" => await ItemsAsync(request, action),
            "subscriptions" => request.Result(new Element("pubsub", PubSubNs.PubSub).Add(new Element("subscriptions", PubSubNs.PubSub))),
            "affiliations" => await AffiliationsAsync(request),
            "default" => request.Result(new Element("pubsub", PubSubNs.PubSub).Add(new Element("default", PubSubNs.PubSub)
                .Add(new NodeConfig().ToForm()))),
            "options" => Unsupported(request, "subscription-options", "PEP subscriptions have no options here"),
            _ => request.Error(StanzaError.BadRequest, "unknown pubsub request"),
        };
    }

    public async ValueTask<Element?> OwnerGetAsync(IqRequest request)
    {
        if (!request.IsSelf) return Forbidden(request);
        var action = request.Payload.FirstElement;
        switch (action?.Name)
        {
            case "configure":
                var account = await pep.GetAsync(request.To.Local!);
                if (NodeName(action) is not { } name) return NodeIdRequired(request);
                if (account.Find(name) is not { } node) return NotFound(request, "no such node");
                return request.Result(new Element("pubsub", PubSubNs.Owner)
                    .Add(new Element("configure", PubSubNs.Owner).SetAttribute("node", name).Add(node.Config.ToForm())));
            case "default":
                return request.Result(new Element("pubsub", PubSubNs.Owner).Add(new Element("default", PubSubNs.Owner).Add(new NodeConfig().ToForm())));
            case "affiliations":
            case "subscriptions":
                return Unsupported(request, action.Name == "affiliations" ? "modify-affiliations" : "manage-subscriptions",
                    "PEP nodes have the account as their only owner and presence-based subscribers");
            default:
                return request.Error(StanzaError.BadRequest, "unknown pubsub#owner request");
        }
    }

    public async ValueTask<Element?> OwnerSetAsync(IqRequest request)
    {
        if (!request.IsSelf) return Forbidden(request);
        var action = request.Payload.FirstElement;
        if (action is null) return request.Error(StanzaError.BadRequest, "unknown pubsub#owner request");
        if (action.Name is "affiliations" or "subscriptions")
            return Unsupported(request, action.Name == "affiliations" ? "modify-affiliations" : "manage-subscriptions",
                "PEP nodes have the account as their only owner and presence-based subscribers");
        if (action.Name is not ("configure" or "purge" or "delete")) return request.Error(StanzaError.BadRequest, "unknown pubsub#owner request");
        if (NodeName(action) is not { } name) return NodeIdRequired(request);
        var user = request.To.Local!;
        var account = await pep.GetAsync(user);
        await account.Gate.WaitAsync();
        try
        {
            if (account.Find(name) is not { } node) return NotFound(request, "no such node");
            switch (action.Name)
            {
                case "configure":
                    var form = action.GetChild("x", Ns.DataForms);
                    if (form is null) return request.Error(StanzaError.BadRequest, "a configuration form is required");
                    if (form.GetAttribute("type") == "cancel") return request.Result();
                    var (config, error) = node.Config.Apply(NodeConfig.ReadForm(form), pep.MaxItemsPerNode, strict: false);
                    if (config is null) return request.Error(StanzaError.NotAcceptable, error);
                    node.Config = config;
                    node.Items = Trim(node.Items, config);
                    await pep.SaveAsync(user, node);
                    return request.Result();
                case "purge":
                    var hadItems = node.Items.Count > 0;
                    node.Items = [];
                    await pep.SaveAsync(user, node);
                    if (hadItems && node.Config.DeliverNotifications)
                        await notifier.NotifyAsync(user, name, node.Config, new Element("event", PubSubNs.Event)
                            .Add(new Element("purge", PubSubNs.Event).SetAttribute("node", name)));
                    return request.Result();
                default:
                    lock (account.Nodes) account.Nodes.Remove(name);
                    await pep.DeleteAsync(user, name);
                    if (node.Config.NotifyDelete)
                        await notifier.NotifyAsync(user, name, node.Config, new Element("event", PubSubNs.Event)
                            .Add(new Element("delete", PubSubNs.Event).SetAttribute("node", name)));
                    return request.Result();
            }
        }
        finally
        {
            account.Gate.Release();
        }
    }

    private async ValueTask<Element?> PublishAsync(IqRequest request, Element publish, Element? publishOptions)
    {
        if (!request.IsSelf) return Forbidden(request, "only the account itself publishes to its PEP nodes");
        if (NodeName(publish) is not { } name) return NodeIdRequired(request);
        if (name.Length > MaxNameLength) return request.Error(StanzaError.NotAcceptable, $"node names are at most {MaxNameLength} characters");
        var items = publish.Elements.ToList();
        if (items.Count == 0) return PubSubError(request, StanzaError.BadRequest, "item-required", "a persistent node needs an item to publish");
        if (items.Count > 1 || !items[0].Is("item", PubSubNs.PubSub))
            return PubSubError(request, StanzaError.BadRequest, "invalid-payload", "publish one <item/> at a time");
        var payloads = items[0].Elements.ToList();
        if (payloads.Count == 0) return PubSubError(request, StanzaError.BadRequest, "payload-required", "the item has no payload");
        if (payloads.Count > 1) return PubSubError(request, StanzaError.BadRequest, "invalid-payload", "an item carries exactly one payload element");
        var id = items[0].GetAttribute("id") is { Length: > 0 } given ? given : Guid.NewGuid().ToString("N");
        if (id.Length > MaxNameLength) return request.Error(StanzaError.NotAcceptable, $"item ids are at most {MaxNameLength} characters");

        List<(string Var, string[] Values)>? preconditions = null;
        if (publishOptions?.GetChild("x", Ns.DataForms) is { } optionsForm)
        {
            preconditions = NodeConfig.ReadForm(optionsForm);
            if (NodeConfig.FormType(preconditions) is not PubSubNs.PublishOptions)
                return PubSubError(request, StanzaError.BadRequest, "invalid-options", $"publish-options need FORM_TYPE {PubSubNs.PublishOptions}");
        }
        var xml = ElementWriter.ToXmlString(payloads[0]);
        var user = request.To.Local!;
        var account = await pep.GetAsync(user);
        await account.Gate.WaitAsync();
        PepNode node;
        try
        {
            if (account.Find(name) is { } existing)
            {
                if (preconditions is not null && existing.Config.Unmet(preconditions, pep.MaxItemsPerNode) is { } unmet)
                    return PubSubError(request, StanzaError.Conflict, "precondition-not-met", unmet);
                node = existing;
            }
            else
            {
                if (account.Nodes.Count >= server.Options.PepMaxNodes)
                    return request.Error(StanzaError.PolicyViolation, $"an account may have at most {server.Options.PepMaxNodes} PEP nodes");
                var (config, error) = new NodeConfig().Apply(preconditions ?? [], pep.MaxItemsPerNode, strict: true);
                if (config is null) return PubSubError(request, StanzaError.Conflict, "precondition-not-met", error);
                node = new PepNode { Name = name, Config = config };
            }
            var kept = node.Items.Where(i => i.Id != id).ToList();
            var limit = node.Config.EffectiveMaxItems(pep.MaxItemsPerNode);
            if (node.Config.MaxItems is null && kept.Count >= limit)
                return request.Error(StanzaError.NotAcceptable, $"node '{name}' holds this server's maximum of {limit} items: retract some first");
            kept.Add(new PepItem { Id = id, Xml = xml, Published = DateTimeOffset.UtcNow });
            var trimmed = Trim(kept, node.Config);
            var bytes = account.Bytes - node.Bytes + trimmed.Sum(i => i.Xml.Length);
            if (bytes > server.Options.PepMaxBytesPerAccount)
                return request.Error(StanzaError.PolicyViolation,
                    $"the account's PEP items would take {bytes} bytes, above the limit of {server.Options.PepMaxBytesPerAccount}");
            node.Items = trimmed;
            lock (account.Nodes) account.Nodes[name] = node;
            await pep.SaveAsync(user, node);
        }
        finally
        {
            account.Gate.Release();
        }
        if (node.Config.DeliverNotifications)
            await notifier.NotifyAsync(user, name, node.Config, Notifier.ItemsEvent(node, [node.Items[^1]]));
        if (Published is { } published) await published(user, name);
        return request.Result(new Element("pubsub", PubSubNs.PubSub)
            .Add(new Element("publish", PubSubNs.PubSub).SetAttribute("node", name).Add(new Element("item", PubSubNs.PubSub).SetAttribute("id", id))));
    }

    private static List<PepItem> Trim(List<PepItem> items, NodeConfig config) =>
        config.MaxItems is { } max && items.Count > max ? items[^max..] : items;

    private async ValueTask<Element?> RetractAsync(IqRequest request, Element retract)
    {
        if (!request.IsSelf) return Forbidden(request, "only the account itself retracts from its PEP nodes");
        if (NodeName(retract) is not { } name) return NodeIdRequired(request);
        var ids = retract.Elements.Where(e => e.Is("item", PubSubNs.PubSub)).Select(e => e.GetAttribute("id")).ToList();
        if (ids.Count == 0 || ids.Any(string.IsNullOrEmpty)) return PubSubError(request, StanzaError.BadRequest, "item-required", "name the item to retract by its id");
        var user = request.To.Local!;
        var account = await pep.GetAsync(user);
        await account.Gate.WaitAsync();
        PepNode? node;
        try
        {
            node = account.Find(name);
            if (node is null) return NotFound(request, "no such node");
            if (ids.FirstOrDefault(id => node.Items.All(i => i.Id != id)) is { } missing) return NotFound(request, $"no item '{missing}' in node '{name}'");
            node.Items = [.. node.Items.Where(i => !ids.Contains(i.Id))];
            await pep.SaveAsync(user, node);
        }
        finally
        {
            account.Gate.Release();
        }
        var notify = NodeConfig.ParseBool(retract.GetAttribute("notify") ?? "") ?? node.Config.NotifyRetract;
        if (notify && node.Config.DeliverNotifications)
        {
            var ev = new Element("event", PubSubNs.Event);
            var list = ev.AddChild("items").SetAttribute("node", name);
            foreach (var id in ids) list.AddChild("retract").SetAttribute("id", id);
            await notifier.NotifyAsync(user, name, node.Config, ev);
        }
        return request.Result();
    }

    private async ValueTask<Element?> CreateAsync(IqRequest request, Element create, Element? configure)
    {
        if (!request.IsSelf) return Forbidden(request, "only the account itself creates its PEP nodes");
        if (NodeName(create) is not { } name) return PubSubError(request, StanzaError.NotAcceptable, "nodeid-required", "PEP nodes are named (no instant nodes)");
        if (name.Length > MaxNameLength) return request.Error(StanzaError.NotAcceptable, $"node names are at most {MaxNameLength} characters");
        var config = new NodeConfig();
        if (configure?.GetChild("x", Ns.DataForms) is { } form)
        {
            var (configured, error) = config.Apply(NodeConfig.ReadForm(form), pep.MaxItemsPerNode, strict: false);
            if (configured is null) return request.Error(StanzaError.NotAcceptable, error);
            config = configured;
        }
        var user = request.To.Local!;
        var account = await pep.GetAsync(user);
        await account.Gate.WaitAsync();
        try
        {
            if (account.Find(name) is not null) return request.Error(StanzaError.Conflict, $"node '{name}' exists");
            if (account.Nodes.Count >= server.Options.PepMaxNodes)
                return request.Error(StanzaError.PolicyViolation, $"an account may have at most {server.Options.PepMaxNodes} PEP nodes");
            var node = new PepNode { Name = name, Config = config };
            lock (account.Nodes) account.Nodes[name] = node;
            await pep.SaveAsync(user, node);
        }
        finally
        {
            account.Gate.Release();
        }
        return request.Result();
    }

    private async ValueTask<Element?> ItemsAsync(IqRequest request, Element items)
    {
        if (NodeName(items) is not { } name) return NodeIdRequired(request);
        var owner = request.To.Local!;
        var account = await pep.GetAsync(owner);
        if (account.Find(name) is not { } node) return NotFound(request, "no such node");
        if (await AccessErrorAsync(request, owner, node.Config) is { } denied) return denied;
        var stored = node.Items;
        IEnumerable<PepItem> selected;
        var wanted = items.Elements.Where(e => e.Is("item", PubSubNs.PubSub)).Select(e => e.GetAttribute("id")).ToList();
        if (wanted.Count > 0)
        {
            selected = stored.Where(i => wanted.Contains(i.Id)).ToList();
            if (!selected.Any()) return NotFound(request, "no such item");
        }
        else if (items.GetAttribute("max_items") is { } maxText)
        {
            if (!int.TryParse(maxText, out var max) || max < 1) return request.Error(StanzaError.BadRequest, "max_items is a positive number");
            selected = stored.Count > max ? stored.Skip(stored.Count - max) : stored;
        }
        else selected = stored;
        var list = new Element("items", PubSubNs.PubSub).SetAttribute("node", name);
        foreach (var item in selected) list.AddChild("item").SetAttribute("id", item.Id).Add(item.Payload);
        return request.Result(new Element("pubsub", PubSubNs.PubSub).Add(list));
    }

    private async ValueTask<Element?> AffiliationsAsync(IqRequest request)
    {
        var list = new Element("affiliations", PubSubNs.PubSub);
        if (request.IsSelf)
        {
            var account = await pep.GetAsync(request.To.Local!);
            lock (account.Nodes)
                foreach (var name in account.Nodes.Keys.Order(StringComparer.Ordinal))
                    list.AddChild("affiliation").SetAttribute("node", name).SetAttribute("affiliation", "owner");
        }
        return request.Result(new Element("pubsub", PubSubNs.PubSub).Add(list));
    }

    /// <summary>The error for a requester the node's access model does not admit (XEP-0060 §6.5.9), or null.</summary>
    public async ValueTask<Element?> AccessErrorAsync(IqRequest request, string owner, NodeConfig config)
    {
        if (request.IsSelf || config.Access == AccessModel.Open) return null;
        var access = PepService.CanRead(owner, Domain, config, request.From, await pep.SubscribersAsync(owner));
        return access switch
        {
            Access.Allowed => null,
            Access.PresenceRequired => PubSubError(request, StanzaError.NotAuthorized, "presence-subscription-required",
                "the node's access model is 'presence': only contacts subscribed to the owner's presence may read it"),
            Access.NotInGroup => PubSubError(request, StanzaError.NotAuthorized, "not-in-roster-group",
                "the node's access model is 'roster': you are not in a roster group it allows"),
            _ => PubSubError(request, StanzaError.NotAllowed, "closed-node", "the node's access model is 'whitelist': only the owner may read it"),
        };
    }

    private static string? NodeName(Element e) => e.GetAttribute("node") is { Length: > 0 } name ? name : null;

    private static Element Forbidden(IqRequest request, string text = "only the account itself") =>
        request.Error(StanzaError.Forbidden, text);

    private static Element NodeIdRequired(IqRequest request) =>
        PubSubError(request, StanzaError.BadRequest, "nodeid-required", "the request must name a node");

    /// <summary>item-not-found, with the legacy code='404' that some clients (profanity's OMEMO) still look for.</summary>
    public static Element NotFound(IqRequest request, string text)
    {
        var error = request.Error(StanzaError.ItemNotFound, text);
        error.GetChild("error", Ns.Client)!.SetAttribute("code", "404");
        return error;
    }

    private static Element Unsupported(IqRequest request, string feature, string text) =>
        PubSubError(request, StanzaError.FeatureNotImplemented, "unsupported", text, feature);

    public static Element PubSubError(IqRequest request, StanzaError condition, string pubsubCondition, string? text, string? feature = null)
    {
        var app = new Element(pubsubCondition, PubSubNs.Errors).SetAttribute("feature", feature);
        return Stanza.ErrorFor(request.Stanza, condition, text, app)
            .SetAttribute("from", request.To.ToString()).SetAttribute("to", request.From.ToString());
    }
}
