using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

/// <summary>
/// Personal eventing (XEP-0163): a publish-subscribe service (XEP-0060) at every account's bare JID, which
/// OMEMO device lists and bundles, avatars, nicknames and bookmarks live on. Subscriptions follow presence
/// subscriptions; notifications go to resources whose entity capabilities (XEP-0115, tracked and verified
/// here) ask for NODE+notify.
/// </summary>
public sealed class PepModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0060", "1.26.0", "the PEP subset: publish with publish-options, retract, items, create, configure, purge, delete"),
        new("XEP-0163", "1.2.2", "presence-based subscriptions, +notify filtering, last item on coming online"),
        new("XEP-0115", "1.6", "caps of every resource verified and cached by hash, for +notify filtering"),
        new("XEP-0222", "1.0", "persistent public nodes (access model open)"),
        new("XEP-0223", "1.1.1", "persistent private nodes (access model whitelist)"),
        new("XEP-0398", "1.0.0", "an avatar published on PEP becomes the vCard PHOTO, a vCard PHOTO is published on PEP; with the §4 photo hash added to presence that has none"),
        new("XEP-0402", "1.2.0", "bookmarks on PEP, with #compat: XEP-0048 bookmarks in private XML storage are the same bookmarks"),
    ];

    /// <summary>The pubsub features of XEP-0060 §10 this service implements, advertised on every account.</summary>
    private static readonly string[] Features =
    [
        "access-open", "access-presence", "access-roster", "access-whitelist", "auto-create", "auto-subscribe",
        "config-node", "config-node-max", "create-and-configure", "create-nodes", "delete-items", "delete-nodes",
        "filtered-notifications", "item-ids", "last-published", "multi-items", "persistent-items",
        "presence-notifications", "presence-subscribe", "publish", "publish-options", "purge-nodes", "retract-items",
        "retrieve-affiliations", "retrieve-default", "retrieve-items", "retrieve-subscriptions",
    ];

    public void Register(XmppServer server)
    {
        var pep = new PepService(server);
        var notifier = new Notifier(server, pep);
        var caps = new CapsTracker(server, (session, before) => CapsChangedAsync(server, notifier, session, before));
        var requests = new PepRequests(server, pep, notifier);
        var bookmarks = new BookmarksBridge(pep, notifier);
        var avatars = new AvatarConversion(server, pep, requests);
        requests.Published = avatars.OnPublishedAsync;

        server.Iq.Register(IqScope.Account, "set", "pubsub", PubSubNs.PubSub, requests.PubSubSetAsync);
        server.Iq.Register(IqScope.Account, "get", "pubsub", PubSubNs.PubSub, requests.PubSubGetAsync);
        server.Iq.Register(IqScope.Account, "set", "pubsub", PubSubNs.Owner, requests.OwnerSetAsync);
        server.Iq.Register(IqScope.Account, "get", "pubsub", PubSubNs.Owner, requests.OwnerGetAsync);

        server.Disco.AccountIdentities.Add(("pubsub", "pep", null));
        server.Disco.AccountFeatures.Add(PubSubNs.PubSub);
        foreach (var feature in Features) server.Disco.AccountFeatures.Add(PubSubNs.PubSub + "#" + feature);
        server.Disco.AccountFeatures.Add(BookmarksBridge.Bookmarks2 + "#compat");
        server.Disco.AccountFeatures.Add(AvatarConversion.Feature);
        server.Disco.AccountItems = request => NodeListAsync(server, pep, requests, request);
        server.Disco.AccountNodeInfo = request => NodeInfoAsync(pep, requests, request);

        // Observe: caps are read from the presence before the presence module broadcasts it, so that a session
        // coming online with caps already known gets the last items at once.
        server.Hooks.PresenceBroadcast.Add(ev => OnPresenceAsync(server, caps, notifier, avatars, ev), Priority.Observe);
        // Observe: a subscription approved by a local owner reaches the local contact; its sessions get the owner's last items.
        server.Hooks.PresenceToBare.Add(async ev =>
        {
            if (ev.Type == "subscribed" && ev.From.Local is { } owner && ev.From.Domain == server.Domain.Domain && ev.To.Local is { } contact)
                await notifier.SendLastItemsOnSubscriptionAsync(owner, contact);
            return false;
        }, Priority.Observe);
        server.Hooks.PreIq.Add(bookmarks.OnIqAsync);
        server.Hooks.PreIq.Add(avatars.OnIqAsync);
        server.Hooks.SessionEnded.Add(session =>
        {
            caps.Forget(session);
            pep.Forget(session.User);
            return ValueTask.FromResult(false);
        });
    }

    private static async ValueTask<bool> OnPresenceAsync(XmppServer server, CapsTracker caps, Notifier notifier, AvatarConversion avatars, StanzaEvent ev)
    {
        var session = ev.Origin!;
        if (ev.Type is not null) return false;
        await avatars.AddPhotoHashAsync(session, ev.Stanza);
        var before = session.Caps;
        if (caps.Observe(session, ev.Stanza)) await CapsChangedAsync(server, notifier, session, before);
        // Coming online: the last items of every interest (XEP-0163 §4.3.3), once caps are known.
        if (!session.IsAvailable && session.Caps is not null) await notifier.SendLastItemsAsync(session);
        return false;
    }

    /// <summary>
    /// A session's caps became known or changed: other modules hear of it, and an available session gets the
    /// last items of the interests it did not have before.
    /// </summary>
    private static async ValueTask CapsChangedAsync(XmppServer server, Notifier notifier, Session session, ClientCaps? before)
    {
        await server.Hooks.CapsKnown.FireAsync(session);
        if (!session.IsAvailable) return;
        await notifier.SendLastItemsAsync(session, before is null ? null : session.Caps!.Features.Except(before.Features).ToHashSet());
    }

    private static async ValueTask<IReadOnlyList<Element>> NodeListAsync(XmppServer server, PepService pep, PepRequests requests, IqRequest request)
    {
        var owner = request.To.Local!;
        var account = await pep.GetAsync(owner);
        List<PepNode> nodes;
        lock (account.Nodes) nodes = [.. account.Nodes.Values];
        var jid = owner + "@" + server.Domain.Domain;
        var items = new List<Element>();
        foreach (var node in nodes.OrderBy(n => n.Name, StringComparer.Ordinal))
            if (await requests.AccessErrorAsync(request, owner, node.Config) is null)
                items.Add(new Element("item", Ns.DiscoItems).SetAttribute("jid", jid).SetAttribute("node", node.Name));
        return items;
    }

    private static async ValueTask<Element?> NodeInfoAsync(PepService pep, PepRequests requests, IqRequest request)
    {
        var name = request.Payload.GetAttribute("node")!;
        var owner = request.To.Local!;
        if ((await pep.GetAsync(owner)).Find(name) is not { } node) return PepRequests.NotFound(request, "no such node");
        if (await requests.AccessErrorAsync(request, owner, node.Config) is { } denied) return denied;
        var query = new Element("query", Ns.DiscoInfo).SetAttribute("node", name);
        query.AddChild("identity").SetAttribute("category", "pubsub").SetAttribute("type", "leaf");
        query.AddChild("feature").SetAttribute("var", PubSubNs.PubSub);
        query.Add(node.Config.ToForm(PubSubNs.MetaData, "result"));
        return request.Result(query);
    }
}
