using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

/// <summary>
/// XEP-0402 §5.3 (#compat): bookmarks kept in private XML storage by XEP-0048 clients and bookmarks published on
/// PEP by XEP-0402 clients are the same bookmarks. Storing <c>&lt;storage xmlns='storage:bookmarks'/&gt;</c> in
/// private storage publishes one urn:xmpp:bookmarks:1 item per conference (and retracts the others); reading it
/// returns the PEP items converted back, whichever way they were set.
/// </summary>
public sealed class BookmarksBridge(PepService pep, Notifier notifier)
{
    public const string Bookmarks2 = "urn:xmpp:bookmarks:1";
    public const string Legacy = "storage:bookmarks";

    /// <summary>The node configuration XEP-0402 requires.</summary>
    private static readonly NodeConfig Config = new()
    {
        Access = AccessModel.Whitelist, MaxItems = null, PersistItems = true, SendLast = SendLast.Never,
    };

    /// <summary>Before routing (PreIq): private-storage requests about storage:bookmarks from the account itself.</summary>
    public async ValueTask<bool> OnIqAsync(StanzaEvent ev)
    {
        if (ev.Origin is not { } origin || ev.To != origin.BareJid || ev.Stanza.FirstElement is not { } query
            || !query.Is("query", Ns.Private) || query.FirstElement is not { } data || !data.Is("storage", Legacy))
            return false;
        var user = origin.User;
        if (ev.Type == "get")
        {
            var node = (await pep.GetAsync(user)).Find(Bookmarks2);
            if (node is null) return false;
            var reply = Stanza.ResultFor(ev.Stanza, new Element("query", Ns.Private).Add(ToLegacy(node)))
                .SetAttribute("from", ev.To.ToString()).SetAttribute("to", ev.From.ToString());
            origin.Send(reply);
            return true;
        }
        if (ev.Type == "set") await PublishAsync(user, data);
        return false;
    }

    private async ValueTask PublishAsync(string user, Element storage)
    {
        var items = new List<PepItem>();
        var now = DateTimeOffset.UtcNow;
        foreach (var conference in storage.Elements.Where(e => e.Is("conference", Legacy)))
        {
            if (conference.GetAttribute("jid") is not { } jid || !Jid.TryParse(jid, out var room) || items.Any(i => i.Id == jid)) continue;
            var converted = new Element("conference", Bookmarks2)
                .SetAttribute("name", conference.GetAttribute("name"))
                .SetAttribute("autojoin", NodeConfig.ParseBool(conference.GetAttribute("autojoin") ?? "") == true ? "true" : null);
            if (conference.GetChildText("nick", Legacy) is { Length: > 0 } nick) converted.AddChild("nick").AddText(nick);
            if (conference.GetChildText("password", Legacy) is { Length: > 0 } password) converted.AddChild("password").AddText(password);
            items.Add(new PepItem { Id = room.ToString(), Xml = ElementWriter.ToXmlString(converted), Published = now });
        }
        var account = await pep.GetAsync(user);
        await account.Gate.WaitAsync();
        PepNode node;
        List<string> removed;
        try
        {
            node = account.Find(Bookmarks2) ?? new PepNode { Name = Bookmarks2, Config = Config };
            removed = [.. node.Items.Select(i => i.Id).Where(id => items.All(i => i.Id != id))];
            node.Items = [.. items.Take(pep.MaxItemsPerNode)];
            lock (account.Nodes) account.Nodes[Bookmarks2] = node;
            await pep.SaveAsync(user, node);
        }
        finally
        {
            account.Gate.Release();
        }
        if (node.Items.Count > 0) await notifier.NotifyAsync(user, Bookmarks2, node.Config, Notifier.ItemsEvent(node, node.Items));
        if (removed.Count > 0)
        {
            var ev = new Element("event", PubSubNs.Event);
            var list = ev.AddChild("items").SetAttribute("node", Bookmarks2);
            foreach (var id in removed) list.AddChild("retract").SetAttribute("id", id);
            await notifier.NotifyAsync(user, Bookmarks2, node.Config, ev);
        }
    }

    private static Element ToLegacy(PepNode node)
    {
        var storage = new Element("storage", Legacy);
        foreach (var item in node.Items)
        {
            var conference = item.Payload;
            if (!conference.Is("conference", Bookmarks2)) continue;
            var legacy = storage.AddChild("conference").SetAttribute("jid", item.Id).SetAttribute("name", conference.GetAttribute("name"))
                .SetAttribute("autojoin", conference.GetAttribute("autojoin") is "true" or "1" ? "true" : "false");
            if (conference.GetChildText("nick", Bookmarks2) is { Length: > 0 } nick) legacy.AddChild("nick").AddText(nick);
            if (conference.GetChildText("password", Bookmarks2) is { Length: > 0 } password) legacy.AddChild("password").AddText(password);
        }
        return storage;
    }
}
