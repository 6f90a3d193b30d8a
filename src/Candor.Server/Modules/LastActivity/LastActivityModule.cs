using System.Globalization;
using Candor.Server.Core;
using Candor.Server.Modules.Roster;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.LastActivity;

/// <summary>
/// Last Activity (XEP-0012). The server answers with its uptime; for an account, on its behalf, with the seconds
/// since its last logout, or 0 while it has an available resource. That is presence information, so only the
/// account itself and contacts subscribed to its presence (subscription 'from' or 'both') get an answer; anyone
/// else gets &lt;forbidden/&gt;, also when asking one of its resources. The time of each account's
/// last logout is stored for this (key-value store "last-logout"), as the published policy says.
/// </summary>
public sealed class LastActivityModule : IModule
{
    public const string Namespace = "jabber:iq:last";

    public IReadOnlyList<Protocol> Protocols { get; } =
        [new("XEP-0012", "2.0", "server uptime; an account's time since its last logout, only to contacts subscribed to its presence")];

    public void Register(XmppServer server)
    {
        var started = DateTimeOffset.UtcNow;
        var lastLogout = server.Storage.OpenKeyValue("last-logout");
        server.Disco.ServerFeatures.Add(Namespace);
        server.Disco.AccountFeatures.Add(Namespace);
        server.Iq.Register(IqScope.Server, "get", "query", Namespace, request =>
            ValueTask.FromResult<Element?>(request.Result(Query(DateTimeOffset.UtcNow - started))));
        server.Iq.Register(IqScope.Account, "get", "query", Namespace, request => AccountAsync(server, lastLogout, request));
        // Priority.Filter: a query to a full JID asks the client for its idle time, which only those who may see
        // the account's presence may learn; the others are refused before the client sees the query.
        server.Hooks.PreIq.Add(ev => RefuseStrangersAtFullJid(server, ev), Priority.Filter);
        server.Hooks.SessionEnded.Add(session => RecordLogoutAsync(server, lastLogout, session));
    }

    private static async ValueTask<Element?> AccountAsync(XmppServer server, IKeyValueStore lastLogout, IqRequest request)
    {
        var user = request.To.Local!;
        if (!await MaySeePresenceAsync(server, user, request.From))
            return request.Error(StanzaError.Forbidden, "only contacts subscribed to this account's presence may ask");
        foreach (var session in server.Sessions.Get(user))
            if (session.IsAvailable) return request.Result(Query(TimeSpan.Zero));
        var stored = await lastLogout.GetAsync(user);
        if (stored is null) return request.Error(StanzaError.ItemNotFound, "no logout of this account is recorded");
        var since = DateTimeOffset.UtcNow - DateTimeOffset.Parse(stored, CultureInfo.InvariantCulture);
        return request.Result(Query(since < TimeSpan.Zero ? TimeSpan.Zero : since));
    }

    private static ValueTask<bool> RefuseStrangersAtFullJid(XmppServer server, StanzaEvent ev)
    {
        if (ev.To.Resource is null || ev.To.Local is null || ev.To.Domain != server.Domain.Domain || ev.Type != "get"
            || ev.Stanza.FirstElement is not { Name: "query", Namespace: Namespace })
            return ValueTask.FromResult(false);
        return RefuseAsync(server, ev);

        static async ValueTask<bool> RefuseAsync(XmppServer server, StanzaEvent ev)
        {
            if (await MaySeePresenceAsync(server, ev.To.Local!, ev.From)) return false;
            await ev.ReplyErrorAsync(StanzaError.Forbidden, "only contacts subscribed to this account's presence may ask");
            return true;
        }
    }

    private static async ValueTask<bool> MaySeePresenceAsync(XmppServer server, string user, Jid requester)
    {
        if (requester.Local == user && requester.Domain == server.Domain.Domain) return true;
        var item = await server.Rosters.GetAsync(user, requester.Bare);
        return item?.Subscription is Subscription.From or Subscription.Both;
    }

    private static async ValueTask<bool> RecordLogoutAsync(XmppServer server, IKeyValueStore lastLogout, Session session)
    {
        // A session that ends because its account was removed leaves nothing behind.
        if (await server.Accounts.ExistsAsync(session.User))
            await lastLogout.SetAsync(session.User, DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        return false;
    }

    private static Element Query(TimeSpan elapsed) =>
        new Element("query", Namespace).SetAttribute("seconds", ((long)elapsed.TotalSeconds).ToString(CultureInfo.InvariantCulture));
}
