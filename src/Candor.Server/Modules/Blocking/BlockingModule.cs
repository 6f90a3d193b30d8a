using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Blocking;

/// <summary>
/// Blocking Command (XEP-0191): an account blocks JIDs; nothing from them reaches it (messages and IQ requests are
/// answered with service-unavailable, as if the account were offline; presence is dropped, as the XEP requires), and
/// what the account itself sends to them is refused with not-acceptable and &lt;blocked/&gt;. Blocking sends the
/// contact unavailable presence; unblocking sends the current presence again.
/// </summary>
public sealed class BlockingModule : IModule
{
    public const string Namespace = "urn:xmpp:blocking";
    public const string ErrorsNamespace = "urn:xmpp:blocking:errors";
    /// <summary>XEP-0191 §3.3 shows not-acceptable with type cancel: retrying cannot help while the block stands.</summary>
    private static readonly StanzaError Blocked = new("not-acceptable", "cancel");

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0191", "1.3.0", "blocklist, block and unblock with pushes; blocked senders get service-unavailable, the blocker not-acceptable with <blocked/>"),
    ];

    public void Register(XmppServer server)
    {
        var lists = new Blocklists(server, server.Storage.OpenMap("blocklist"));
        var handlers = new Handlers(server, lists);
        server.Caches.Register(Blocklists.CacheName, lists.Drop);
        server.Disco.ServerFeatures.Add(Namespace);
        server.Iq.Register(IqScope.Account, "get", "blocklist", Namespace, handlers.GetAsync);
        server.Iq.Register(IqScope.Account, "set", "block", Namespace, request => handlers.ChangeAsync(request, block: true));
        server.Iq.Register(IqScope.Account, "set", "unblock", Namespace, request => handlers.ChangeAsync(request, block: false));
        server.Hooks.PreMessage.Add(handlers.FromSessionAsync, Priority.Filter);
        server.Hooks.PrePresence.Add(handlers.FromSessionAsync, Priority.Filter);
        server.Hooks.PreIq.Add(handlers.FromSessionAsync, Priority.Filter);
        // Presence the server sends on a session's behalf (broadcasts, probe answers) passes here, not through the Pre hooks.
        server.Hooks.PresenceToBare.Add(handlers.ServerPresenceAsync, Priority.Filter);
        server.Hooks.PresenceToFull.Add(handlers.ServerPresenceAsync, Priority.Filter);
        server.Hooks.SessionStarted.Add(async session => { await lists.LoadAsync(session.User); return false; });
        server.Hooks.SessionEnded.Add(session => { lists.Unload(session.User); return ValueTask.FromResult(false); });
    }

    private sealed class Handlers(XmppServer server, Blocklists lists)
    {
        private bool IsLocal(Jid jid) => jid.Local is not null && jid.Domain == server.Domain.Domain;

        public ValueTask<bool> FromSessionAsync(StanzaEvent ev)
        {
            var origin = ev.Origin!;
            var to = ev.To;
            // The account's own server and own account are never blocked (a blocked domain still lets it ping its server).
            if (to.Domain == server.Domain.Domain && (to.Local is null || to.Local == origin.User)) return ValueTask.FromResult(false);
            // The common case, decided without a state machine: both lists in memory, neither matches.
            if (lists.TryGetCached(origin.User, out var own) && !Blocklists.Matches(own, to)
                && (!IsLocal(to) || (lists.TryGetCached(to.Local!, out var theirs) && !Blocklists.Matches(theirs, ev.From))))
                return ValueTask.FromResult(false);
            return CheckAsync(ev, origin, to);
        }

        private async ValueTask<bool> CheckAsync(StanzaEvent ev, Session origin, Jid to)
        {
            if (Blocklists.Matches(await lists.GetAsync(origin.User), to))
            {
                // §3.3: not routed; the blocker is told why.
                if (!(ev.Stanza.IsIq() && ev.Type == "result"))
                    await ev.ReplyErrorAsync(Blocked, "you have blocked this address", new Element("blocked", ErrorsNamespace));
                return true;
            }
            if (!IsLocal(to) || !Blocklists.Matches(await lists.GetAsync(to.Local!), ev.From)) return false;
            // §3.3: the contact appears offline: service-unavailable for messages and IQ requests, nothing for presence.
            if (ev.Stanza.IsMessage() || ev.Type is "get" or "set") await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable);
            return true;
        }

        public async ValueTask<bool> ServerPresenceAsync(StanzaEvent ev)
        {
            if (ev.Origin is not null) return false;
            return (IsLocal(ev.From) && Blocklists.Matches(await lists.GetAsync(ev.From.Local!), ev.To))
                   || Blocklists.Matches(await lists.GetAsync(ev.To.Local!), ev.From);
        }

        public async ValueTask<Element?> GetAsync(IqRequest request)
        {
            if (!request.IsSelf || request.Origin is null) return request.Error(StanzaError.Forbidden, "only your own blocklist");
            request.Origin.BlocklistRequested = true;
            var result = new Element("blocklist", Namespace);
            foreach (var jid in (await lists.GetAsync(request.From.Local!)).Order(StringComparer.Ordinal))
                result.AddChild("item").SetAttribute("jid", jid);
            return request.Result(result);
        }

        public async ValueTask<Element?> ChangeAsync(IqRequest request, bool block)
        {
            if (!request.IsSelf || request.Origin is null) return request.Error(StanzaError.Forbidden, "only your own blocklist");
            var jids = new List<string>();
            foreach (var item in request.Payload.Elements)
            {
                if (!item.Is("item", Namespace)) continue;
                if (!Jid.TryParse(item.GetAttribute("jid") ?? "", out var jid))
                    return request.Error(StanzaError.JidMalformed, $"not a JID: '{item.GetAttribute("jid")}'");
                jids.Add(jid.ToString());
            }
            // §3.3: a block names at least one JID (an empty unblock means everything).
            if (block && jids.Count == 0) return request.Error(StanzaError.BadRequest, "block at least one JID");
            var user = request.From.Local!;
            var before = await lists.GetAsync(user);
            if (block) await SendUnavailableAsync(user, [.. jids.Where(j => !before.Contains(j))]);
            var after = await lists.ChangeAsync(user, jids, block);
            if (!block) await SendCurrentPresenceAsync(user, [.. before.Where(j => !after.Contains(j))]);
            Push(user, request.Payload);
            return request.Result();
        }

        /// <summary>The block or unblock, as sent, to every resource that requested the blocklist.</summary>
        private void Push(string user, Element change)
        {
            foreach (var session in server.Sessions.Get(user))
            {
                if (!session.BlocklistRequested) continue;
                var push = Stanza.CreateIq("set", "block-" + Guid.NewGuid().ToString("N")[..12], null, session.Jid);
                push.Add(change);
                session.Send(push);
            }
        }

        /// <summary>
        /// The contacts that may see the account's presence (a 'from' subscription or directed presence) and match
        /// one of <paramref name="items"/>.
        /// </summary>
        private async Task<List<Jid>> PresenceWatchersAsync(string user, IReadOnlyList<string> items)
        {
            var watchers = new List<Jid>();
            if (items.Count == 0) return watchers;
            var set = new HashSet<string>(items, StringComparer.Ordinal);
            foreach (var item in await server.Rosters.GetAllAsync(user))
                if (item.SubscribedFrom && Jid.TryParse(item.Jid, out var contact) && Blocklists.Matches(set, contact)) watchers.Add(contact);
            foreach (var session in server.Sessions.Get(user))
                foreach (var target in session.DirectedPresence)
                    if (Blocklists.Matches(set, target) && !watchers.Contains(target)) watchers.Add(target);
            return watchers;
        }

        /// <summary>§3.3: on blocking, the contact receives unavailable presence (before the block hides the account's presence).</summary>
        private async Task SendUnavailableAsync(string user, IReadOnlyList<string> items)
        {
            foreach (var contact in await PresenceWatchersAsync(user, items))
                foreach (var session in server.Sessions.Get(user))
                {
                    if (!session.IsAvailable) continue;
                    var unavailable = new Element("presence", Ns.Client).SetAttribute("type", "unavailable")
                        .SetAttribute("from", session.Jid.ToString()).SetAttribute("to", contact.ToString());
                    await server.Router.DeliverAsync(unavailable, session.Jid, contact);
                }
        }

        /// <summary>§3.4: on unblocking, the contact receives the account's current presence again.</summary>
        private async Task SendCurrentPresenceAsync(string user, IReadOnlyList<string> items)
        {
            foreach (var contact in await PresenceWatchersAsync(user, items))
                foreach (var session in server.Sessions.Get(user))
                {
                    if (!session.IsAvailable || session.Presence is not { } presence) continue;
                    var copy = presence.Clone().SetAttribute("to", contact.ToString());
                    await server.Router.DeliverAsync(copy, session.Jid, contact);
                }
        }
    }
}
