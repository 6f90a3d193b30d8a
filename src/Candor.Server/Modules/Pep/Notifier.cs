using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

/// <summary>
/// Event notifications (XEP-0060 §7.1.2, XEP-0163 §4.3): to the available resources of the owner and of the
/// contacts the access model lets see the node, whose caps say NODE+notify (filtered notifications). The
/// recipients come from sessions and the cached subscriber list, never from storage per notification; the
/// event element is built once and shared by every recipient's message.
/// </summary>
public sealed class Notifier(XmppServer server, PepService pep)
{
    /// <summary>Sends the event to everyone interested in the owner's node that may see it.</summary>
    public async ValueTask NotifyAsync(string owner, string node, NodeConfig config, Element pubsubEvent)
    {
        var from = owner + "@" + server.Domain.Domain;
        var interest = node + "+notify";
        foreach (var session in server.Sessions.Get(owner))
            if (session.IsAvailable) Send(session, from, interest, pubsubEvent, null);
        if (config.Access == AccessModel.Whitelist) return;
        var subscribers = await pep.SubscribersAsync(owner);
        foreach (var subscriber in subscribers.Values)
        {
            if (subscriber.LocalUser is not { } contact || (config.Access == AccessModel.Roster && !subscriber.InGroupOf(config))) continue;
            foreach (var session in server.Sessions.Get(contact))
                if (session.IsAvailable) Send(session, from, interest, pubsubEvent, null);
        }
    }

    private static void Send(Session session, string from, string interest, Element pubsubEvent, Element? delay)
    {
        if (session.Caps is not { } caps || !caps.Features.Contains(interest)) return;
        var message = new Element("message", Ns.Client)
            .SetAttribute("from", from)
            .SetAttribute("to", session.Jid.ToString())
            .SetAttribute("type", "headline")
            .SetAttribute("id", "pep-" + Guid.NewGuid().ToString("N")[..12]);
        message.Add(pubsubEvent);
        if (delay is not null) message.Add(delay);
        session.Send(message);
    }

    /// <summary>
    /// The last published item of every node the session's caps ask for, of its own account and of each contact
    /// whose presence it is subscribed to, as the node's send_last_published_item says (XEP-0163 §4.3.3).
    /// <paramref name="only"/> limits it to the interests that are new.
    /// </summary>
    public async ValueTask SendLastItemsAsync(Session session, IReadOnlySet<string>? only = null)
    {
        if (Interests(session, only) is not { Count: > 0 } interests) return;
        await SendLastItemsAsync(session, session.User, interests, onPresence: true);
        foreach (var item in await server.Rosters.GetAllAsync(session.User))
            if (item.SubscribedTo && Jid.TryParse(item.Jid, out var contact) && contact.Local is not null && contact.Domain == server.Domain.Domain)
                await SendLastItemsAsync(session, contact.Local, interests, onPresence: true);
    }

    /// <summary>The last items of one owner's nodes, to the available sessions of a contact it has just let subscribe.</summary>
    public async ValueTask SendLastItemsOnSubscriptionAsync(string owner, string contact)
    {
        foreach (var session in server.Sessions.Get(contact))
            if (session.IsAvailable && Interests(session, null) is { Count: > 0 } interests)
                await SendLastItemsAsync(session, owner, interests, onPresence: false);
    }

    private static List<string>? Interests(Session session, IReadOnlySet<string>? only) =>
        session.Caps?.Features.Where(f => f.EndsWith("+notify", StringComparison.Ordinal) && (only is null || only.Contains(f)))
            .Select(f => f[..^"+notify".Length]).ToList();

    private async ValueTask SendLastItemsAsync(Session session, string owner, List<string> interests, bool onPresence)
    {
        var account = await pep.GetAsync(owner);
        if (account.Nodes.Count == 0) return;
        var subscribers = owner == session.User ? null : await pep.SubscribersAsync(owner);
        var from = owner + "@" + server.Domain.Domain;
        foreach (var name in interests)
        {
            if (account.Find(name) is not { } node || node.Config.SendLast == SendLast.Never
                || (onPresence && node.Config.SendLast != SendLast.OnSubAndPresence) || node.Last is not { } last) continue;
            if (subscribers is not null && PepService.CanRead(owner, server.Domain.Domain, node.Config, session.BareJid, subscribers) != Access.Allowed) continue;
            var delay = new Element("delay", Ns.Delay).SetAttribute("stamp", XmppTime.Format(last.Published)).SetAttribute("from", from);
            Send(session, from, name + "+notify", ItemsEvent(node, [last]), delay);
        }
    }

    public static Element ItemsEvent(PepNode node, IEnumerable<PepItem> items)
    {
        var ev = new Element("event", PubSubNs.Event);
        var list = ev.AddChild("items").SetAttribute("node", node.Name);
        foreach (var item in items)
        {
            var element = list.AddChild("item").SetAttribute("id", item.Id);
            if (node.Config.DeliverPayloads) element.Add(item.Payload);
        }
        return ev;
    }
}
