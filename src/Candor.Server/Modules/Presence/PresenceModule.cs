using System.Globalization;
using Candor.Server.Core;
using Candor.Server.Modules.Roster;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Presence;

/// <summary>
/// Presence (RFC 6121 §3-4): the subscription state machine with pre-approval, broadcast of available and
/// unavailable presence, probes on initial presence, directed presence, and unavailable presence when a
/// session ends. Subscription stanzas are processed twice, as RFC 6121 describes: outbound on the sender's
/// roster before routing, inbound on the contact's roster on delivery.
/// </summary>
public sealed class PresenceModule : IModule
{
    private static readonly string[] SubscriptionTypes = ["subscribe", "subscribed", "unsubscribe", "unsubscribed"];

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("RFC 6121 §3-4", "", "subscriptions with pre-approval, presence broadcast (to the sending resource too), probes answered, directed presence"),
        new("XEP-0115", "1.6", "entity capabilities passed through unchanged"),
    ];

    public void Register(XmppServer server)
    {
        var presence = new PresenceHandlers(server);
        server.Hooks.PrePresence.Add(presence.OutboundAsync, Priority.Fallback);
        server.Hooks.PresenceBroadcast.Add(presence.BroadcastAsync, Priority.Fallback);
        server.Hooks.PresenceToBare.Add(presence.InboundToBareAsync, Priority.Fallback);
        server.Hooks.PresenceToFull.Add(presence.InboundToFullAsync, Priority.Fallback);
        server.Hooks.PresenceToHost.Add(_ => ValueTask.FromResult(true), Priority.Fallback);
        server.Hooks.SessionEnded.Add(presence.SessionEndedAsync, Priority.Fallback);
        server.StreamFeatures.AfterAuthentication.Add(() => new Element("sub", Ns.PreApproval));
    }

    private sealed class PresenceHandlers(XmppServer server)
    {
        private RosterManager Rosters => server.Rosters;

        // ---- outbound: from a local session, before routing ----

        public async ValueTask<bool> OutboundAsync(StanzaEvent ev)
        {
            var type = ev.Type;
            var user = ev.Origin!.User;
            if (type is null or "unavailable")
            {
                // Directed presence (RFC 6121 §4.6): remember it, so the target hears of our going offline.
                if (ev.To.Bare != ev.Origin.BareJid)
                {
                    if (type is null) ev.Origin.AddDirectedPresence(ev.To);
                    else ev.Origin.RemoveDirectedPresence(ev.To);
                }
                return false;
            }
            if (Array.IndexOf(SubscriptionTypes, type) < 0) return false;

            // Subscription stanzas are sent from the bare JID and to the bare JID (RFC 6121 §3.1.1).
            var contact = ev.To.Bare;
            var stanza = ev.Stanza;
            stanza.SetAttribute("from", ev.Origin.BareJid.ToString()).SetAttribute("to", contact.ToString());
            var item = await Rosters.GetAsync(user, contact);
            var route = true;
            switch (type)
            {
                case "subscribe":
                    item ??= new RosterItem { Jid = contact.ToString() };
                    item.Hidden = false;
                    if (!item.SubscribedTo && !item.PendingOut)
                    {
                        item.PendingOut = true;
                        await Rosters.SaveAsync(user, item);
                    }
                    break;
                case "subscribed":
                    if (item is { PendingIn: true })
                    {
                        item.PendingIn = false;
                        item.Hidden = false;
                        item.SetFrom(true);
                        await Rosters.SaveAsync(user, item);
                    }
                    else if (item is null || !item.SubscribedFrom)
                    {
                        // Pre-approval (RFC 6121 §3.4): remember it, tell nobody yet.
                        item ??= new RosterItem { Jid = contact.ToString() };
                        item.Approved = true;
                        item.Hidden = false;
                        await Rosters.SaveAsync(user, item);
                        route = false;
                    }
                    else
                    {
                        route = false;
                    }
                    break;
                case "unsubscribe":
                    if (item is not null && (item.SubscribedTo || item.PendingOut))
                    {
                        item.SetTo(false);
                        item.PendingOut = false;
                        await Rosters.SaveAsync(user, item);
                    }
                    break;
                case "unsubscribed":
                    if (item is not null && (item.SubscribedFrom || item.PendingIn || item.Approved))
                    {
                        item.SetFrom(false);
                        item.PendingIn = false;
                        item.Approved = false;
                        await SaveOrDropAsync(user, item);
                    }
                    break;
            }
            if (route) await server.Router.DeliverAsync(stanza, ev.Origin.BareJid, contact);
            if (type == "subscribed" && route) await SendCurrentPresenceAsync(ev.Origin.User, contact);
            if (type == "unsubscribed") await SendUnavailableAsync(ev.Origin.User, contact);
            return true;
        }

        /// <summary>Presence without 'to': initial, updated or unavailable presence (RFC 6121 §4.2-4.5).</summary>
        public async ValueTask<bool> BroadcastAsync(StanzaEvent ev)
        {
            var session = ev.Origin!;
            var type = ev.Type;
            if (type is not (null or "unavailable"))
            {
                // Subscriptions and probes name their contact (RFC 6121 §3.1.1, §4.3.1); errors are not answered.
                await ev.ReplyErrorAsync(StanzaError.BadRequest, $"presence of type '{type}' needs a 'to' address");
                return true;
            }
            var stanza = ev.Stanza;
            stanza.SetAttribute("from", session.Jid.ToString());
            if (type == "unavailable")
            {
                if (!session.IsAvailable) return true;
                await BroadcastUnavailableAsync(session, stanza);
                return true;
            }
            var initial = !session.IsAvailable;
            session.Priority = ParsePriority(stanza);
            session.Presence = stanza;
            session.IsAvailable = true;
            var roster = await Rosters.GetAllAsync(session.User);
            await BroadcastAsync(session, roster, stanza);
            if (!initial) return true;

            // Probes (RFC 6121 §4.3): the presence of every contact we are subscribed to, and of our own other resources.
            foreach (var item in roster)
            {
                if (item.SubscribedTo && Jid.TryParse(item.Jid, out var contact) && contact.Local is not null && contact.Domain == server.Domain.Domain)
                    foreach (var other in server.Sessions.Get(contact.Local))
                        if (other.IsAvailable && other.Presence is { } p)
                            await server.Router.DeliverAsync(Addressed(p, session.Jid), other.Jid, session.Jid);
                // Subscription requests that waited for us (RFC 6121 §3.1.3).
                if (item.PendingIn)
                    session.Send(new Element("presence", Ns.Client).SetAttribute("from", item.Jid).SetAttribute("to", session.BareJid.ToString()).SetAttribute("type", "subscribe"));
            }
            foreach (var own in server.Sessions.Get(session.User))
                if (own != session && own.IsAvailable && own.Presence is { } p) session.Send(Addressed(p, session.Jid));
            await server.Hooks.SessionAvailable.FireAsync(session);
            return true;
        }

        public async ValueTask<bool> SessionEndedAsync(Session session)
        {
            if (!session.IsAvailable) return false;
            // A session replaced by one with the same resource leaves its presence to the new one.
            if (server.Sessions.Get(session.Jid) is { } successor && successor != session) return false;
            var unavailable = new Element("presence", Ns.Client).SetAttribute("type", "unavailable").SetAttribute("from", session.Jid.ToString());
            await BroadcastUnavailableAsync(session, unavailable);
            return false;
        }

        private async Task BroadcastUnavailableAsync(Session session, Element stanza)
        {
            session.IsAvailable = false;
            session.Presence = null;
            var roster = await Rosters.GetAllAsync(session.User);
            await BroadcastAsync(session, roster, stanza);
            foreach (var target in session.TakeDirectedPresence())
                if (!roster.Any(i => i.SubscribedFrom && i.Jid == target.Bare.ToString()))
                    await server.Router.DeliverAsync(Addressed(stanza, target), session.Jid, target);
        }

        private async Task BroadcastAsync(Session session, IReadOnlyList<RosterItem> roster, Element stanza)
        {
            foreach (var item in roster)
                if (item.SubscribedFrom && Jid.TryParse(item.Jid, out var contact))
                    await server.Router.DeliverAsync(Addressed(stanza, contact), session.Jid, contact);
            // Available presence goes to every available resource including the sender's own (RFC 6121 §4.2.2,
            // §4.4.2); unavailable presence reaches only the others, as the sender is no longer available.
            // In a cluster, the client sees its presence once every node routes by it.
            if (server.Cluster is { } cluster) await cluster.SettledAsync(session);
            foreach (var own in server.Sessions.Get(session.User))
                if (own.IsAvailable) own.Send(Addressed(stanza, own.Jid));
        }

        // ---- inbound: delivery to a local account ----

        public async ValueTask<bool> InboundToBareAsync(StanzaEvent ev)
        {
            var user = ev.To.Local!;
            var type = ev.Type;
            if (Array.IndexOf(SubscriptionTypes, type) >= 0 || type == "probe")
            {
                if (!await server.Router.AccountExistsAsync(user))
                {
                    // RFC 6121 §3.1.3, §4.3.2: a subscription request or probe to no account is answered as refused.
                    if (type is "subscribe" or "probe") await ReplyAsync(ev, "unsubscribed");
                    return true;
                }
                await InboundSubscriptionAsync(ev, user, type!);
                return true;
            }
            // Available, unavailable and error presence to a bare JID go to every available resource (RFC 6121 §8.5.2.1.2).
            foreach (var session in server.Sessions.Get(user))
                if (session.IsAvailable) session.Send(ev.Stanza);
            return true;
        }

        public async ValueTask<bool> InboundToFullAsync(StanzaEvent ev)
        {
            var type = ev.Type;
            if (Array.IndexOf(SubscriptionTypes, type) >= 0 || type == "probe")
                return await InboundToBareAsync(new StanzaEvent(server, ev.Origin, ev.Stanza, ev.From, ev.To.Bare));
            server.Sessions.Get(ev.To)?.Send(ev.Stanza);
            return true;
        }

        private async Task InboundSubscriptionAsync(StanzaEvent ev, string user, string type)
        {
            var from = ev.From.Bare;
            var item = await Rosters.GetAsync(user, from);
            switch (type)
            {
                case "subscribe":
                    if (item is { SubscribedFrom: true })
                    {
                        await ReplyAsync(ev, "subscribed");
                        return;
                    }
                    if (item is { Approved: true })
                    {
                        item.Approved = false;
                        item.SetFrom(true);
                        await Rosters.SaveAsync(user, item);
                        await ReplyAsync(ev, "subscribed");
                        await SendCurrentPresenceAsync(user, from);
                        return;
                    }
                    item ??= new RosterItem { Jid = from.ToString(), Hidden = true };
                    item.PendingIn = true;
                    await Rosters.SaveAsync(user, item);
                    DeliverToAvailable(user, ev.Stanza);
                    return;
                case "subscribed":
                    if (item is not { PendingOut: true }) return;
                    item.PendingOut = false;
                    item.SetTo(true);
                    await Rosters.SaveAsync(user, item);
                    DeliverToAvailable(user, ev.Stanza);
                    return;
                case "unsubscribe":
                    if (item is null || !(item.SubscribedFrom || item.PendingIn)) return;
                    item.SetFrom(false);
                    item.PendingIn = false;
                    item.Approved = false;
                    await SaveOrDropAsync(user, item);
                    DeliverToAvailable(user, ev.Stanza);
                    await SendUnavailableAsync(user, from);
                    return;
                case "unsubscribed":
                    if (item is null || !(item.SubscribedTo || item.PendingOut)) return;
                    item.SetTo(false);
                    item.PendingOut = false;
                    await Rosters.SaveAsync(user, item);
                    DeliverToAvailable(user, ev.Stanza);
                    return;
                case "probe":
                    // RFC 6121 §4.3.2: a subscriber gets the current presence, or unavailable when no resource is
                    // available; anyone else gets 'unsubscribed' and learns nothing more.
                    if (item is not { SubscribedFrom: true }) await ReplyAsync(ev, "unsubscribed");
                    else if (!await SendCurrentPresenceAsync(user, ev.From)) await ReplyAsync(ev, "unavailable");
                    return;
            }
        }

        private async Task SaveOrDropAsync(string user, RosterItem item)
        {
            if (item.Hidden && item.Subscription == Subscription.None && !item.PendingOut) await Rosters.RemoveAsync(user, item.Jid);
            else await Rosters.SaveAsync(user, item);
        }

        private void DeliverToAvailable(string user, Element stanza)
        {
            foreach (var session in server.Sessions.Get(user))
                if (session.IsAvailable) session.Send(stanza);
        }

        /// <summary>Sends the presence of each of <paramref name="user"/>'s available resources to <paramref name="to"/>; false when none is.</summary>
        private async Task<bool> SendCurrentPresenceAsync(string user, Jid to)
        {
            var sent = false;
            foreach (var session in server.Sessions.Get(user))
                if (session.IsAvailable && session.Presence is { } p)
                {
                    await server.Router.DeliverAsync(Addressed(p, to), session.Jid, to);
                    sent = true;
                }
            return sent;
        }

        private async Task SendUnavailableAsync(string user, Jid to)
        {
            foreach (var session in server.Sessions.Get(user))
            {
                if (!session.IsAvailable) continue;
                var unavailable = new Element("presence", Ns.Client)
                    .SetAttribute("from", session.Jid.ToString()).SetAttribute("to", to.ToString()).SetAttribute("type", "unavailable");
                await server.Router.DeliverAsync(unavailable, session.Jid, to);
            }
        }

        private ValueTask ReplyAsync(StanzaEvent ev, string type)
        {
            var reply = new Element("presence", Ns.Client)
                .SetAttribute("from", ev.To.Bare.ToString()).SetAttribute("to", ev.From.Bare.ToString()).SetAttribute("type", type);
            return server.Router.DeliverAsync(reply, ev.To.Bare, ev.From.Bare);
        }

        /// <summary>A copy of a presence stanza with its own 'to' (the original is shared and must not change).</summary>
        private static Element Addressed(Element presence, Jid to)
        {
            var copy = presence.Clone();
            copy.SetAttribute("to", to.ToString());
            return copy;
        }

        private static int ParsePriority(Element presence)
        {
            var text = presence.GetChildText("priority", Ns.Client);
            return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p) ? Math.Clamp(p, -128, 127) : 0;
        }
    }
}
