using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Candor.Server.Accounts;
using Candor.Server.Connections;
using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Clients;

/// <summary>
/// No silent second login (promise 3): a login from a client the account has not used before is announced
/// at once to the account's other sessions — or, if none is online, at its next login — by a chat message
/// from the server's own JID with a readable line and the same facts in a &lt;login/&gt; element. Every client
/// is listed and revocable through XEP-0494 and through ad-hoc commands; a password change is announced
/// and ends the other sessions.
/// </summary>
public sealed partial class ClientsModule : IModule
{
    public const string NoticeNamespace = "urn:xmpp:candor:login:0";
    public const string CamNamespace = "urn:xmpp:cam:0";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0494", "0.1.0", "list the clients that accessed the account; revoke ends their sessions"),
        new("Candor login notices", "0", $"a chat message with <login xmlns='{NoticeNamespace}'/> for every new client"),
    ];

    private readonly ConcurrentDictionary<Session, string> _clientOf = new();
    private ILogger _logger = null!;

    public void Register(XmppServer server)
    {
        _logger = server.LoggerFactory.CreateLogger("Candor.Clients");
        var registry = new ClientRegistry(server.Storage);
        server.Clients = registry;
        var pending = server.Storage.OpenArchive("login-notices");
        server.Hooks.SessionStarted.Add(session => OnLoginAsync(server, registry, pending, session));
        server.Hooks.SessionAvailable.Add(session => DeliverPendingAsync(pending, session));
        server.Hooks.SessionEnded.Add(session => OnLogoutAsync(registry, session));
        server.Hooks.PasswordChanged.Add(change => OnPasswordChangedAsync(server, pending, change));
        server.Disco.AccountFeatures.Add(CamNamespace);
        server.Iq.Register(IqScope.Account, "get", "list", CamNamespace, request => ListAsync(server, registry, request));
        server.Iq.Register(IqScope.Account, "set", "revoke", CamNamespace, request => RevokeAsync(server, registry, request));
        server.Disco.Commands["list-sessions"] = new("list-sessions", "List my sessions", requester => ListCommandAsync(server, registry, requester));
        server.Disco.Commands["end-other-sessions"] = new("end-other-sessions", "End other sessions", requester => EndOthersCommand(server, requester));
        server.Hooks.SessionAvailable.Add(session => LearnSoftwareAsync(registry, session));
        server.Hooks.CapsKnown.Add(session => LearnSoftwareAsync(registry, session));
        // Login records hold IP addresses: drop those unused for longer than the published retention.
        registry.PruneAsync(server.Accounts.ListAsync().GetAwaiter().GetResult(), DateTimeOffset.UtcNow.AddDays(-server.Options.LoginHistoryDays))
            .GetAwaiter().GetResult();
    }

    private async ValueTask<bool> OnLoginAsync(XmppServer server, ClientRegistry registry, IArchiveStore pending, Session session)
    {
        var now = DateTimeOffset.UtcNow;
        var address = session.Transport.RemoteAddress.ToString();
        var agent = session.UserAgent;
        var id = ClientRegistry.IdentifyClient(session.User, agent, session.Jid.Resource!, address);
        _clientOf[session] = id;
        var record = await registry.GetAsync(session.User, id);
        var isNew = record is null;
        record ??= new ClientRecord
        {
            Id = id, Resource = session.Jid.Resource!, FirstSeen = now, LastSeen = now, LastAddress = address,
            Mechanism = session.Mechanism, ByUserAgent = agent?.Id is not null,
        };
        // A client known by its user-agent id may bind another resource each time; the record shows the latest.
        record.Resource = session.Jid.Resource!;
        if (agent?.Software is { } software) record.Software = software;
        if (agent?.Device is { } device) record.Device = device;
        record.LastSeen = now;
        record.LastAddress = address;
        record.Mechanism = session.Mechanism;
        record.Tls = session.Transport.TlsProtocol;
        record.Sessions++;
        await registry.SaveAsync(session.User, record);
        var announce = isNew || server.Options.LoginNotices == "every-session";
        if (record.Software is null)
        {
            // Naming may ask the client, which answers on this very stream: this hook runs in its read loop, so the
            // naming and the notice that waits for it run beside it.
            _ = NameThenAnnounceAsync(server, registry, pending, session, record, now, announce, isNew);
            return false;
        }
        if (announce) await AnnounceAsync(server, pending, session, record, now, isNew);
        return false;
    }

    private async Task NameThenAnnounceAsync(XmppServer server, ClientRegistry registry, IArchiveStore pending, Session session,
        ClientRecord record, DateTimeOffset now, bool announce, bool isNew)
    {
        try
        {
            if (await ResolveSoftwareAsync(server, session) is { } software)
            {
                record.Software = software;
                // Read again: the record may have changed meanwhile (a caps node learnt, which a version answer beats).
                if (await registry.GetAsync(session.User, record.Id) is { } current && current.Software != software)
                {
                    current.Software = software;
                    await registry.SaveAsync(session.User, current);
                }
            }
            if (announce) await AnnounceAsync(server, pending, session, record, now, isNew);
        }
        catch (Exception e)
        {
            Log.NoticeFailed(_logger, e, session.Jid);
        }
    }

    /// <summary>
    /// Names the client software of a session that the XEP-0388 user agent (taken at login) does not name and that
    /// has no name from an earlier login: its answer to one XEP-0092 version query ("Gajim 1.7.3 on Linux"), bounded
    /// by ClientVersionTimeoutSeconds; null when it gives none. Later, the caps node of the first presence fills a
    /// name still missing (<see cref="LearnSoftwareAsync"/>).
    /// </summary>
    private static async Task<string?> ResolveSoftwareAsync(XmppServer server, Session session)
    {
        var seconds = server.Options.ClientVersionTimeoutSeconds;
        if (seconds == 0) return null;
        var answer = await server.OutboundIq.GetAsync(session, new Element("query", Ns.Version), TimeSpan.FromSeconds(seconds));
        if (answer?.Type() != "result" || answer.GetChild("query", Ns.Version) is not { } query) return null;
        var name = SaslProfiles.CleanText(query.GetChildText("name", Ns.Version));
        if (name is null) return null;
        if (SaslProfiles.CleanText(query.GetChildText("version", Ns.Version)) is { } version) name += " " + version;
        if (SaslProfiles.CleanText(query.GetChildText("os", Ns.Version)) is { } os) name += " on " + os;
        return name.Length <= SaslProfiles.MaxUserAgentTextLength ? name : name[..SaslProfiles.MaxUserAgentTextLength];
    }

    private async Task AnnounceAsync(XmppServer server, IArchiveStore pending, Session session, ClientRecord record, DateTimeOffset now, bool isNew)
    {
        var id = record.Id;
        var notice = Notice(server, session, record, now, isNew);
        var others = server.Sessions.Get(session.User).Where(s => s != session).ToList();
        if (others.Count == 0)
        {
            // Kept for the next login; tagged with this client so that it is not shown to itself.
            await pending.AppendAsync(session.User, now, id, ElementWriter.ToXmlString(notice));
            return;
        }
        foreach (var other in others)
        {
            var copy = notice.Clone();
            copy.SetAttribute("to", other.Jid.ToString());
            other.Send(copy);
        }
    }

    private async ValueTask<bool> DeliverPendingAsync(IArchiveStore pending, Session session)
    {
        if (!_clientOf.TryGetValue(session, out var id)) return false;
        var waiting = await pending.QueryAsync(session.User, ArchiveQuery.All);
        var forMe = waiting.Where(n => n.With != id).ToList();
        if (forMe.Count == 0) return false;
        foreach (var item in forMe)
        {
            // One at a time: a notice about this very client, between them, stays for the account's other clients.
            if ((await pending.TakeAsync(session.User, new ArchiveQuery { AfterId = item.Id - 1, BeforeId = item.Id + 1 })).Count == 0) continue;
            var notice = StoredStanza.Parse(item.Value);
            notice.SetAttribute("to", session.Jid.ToString());
            session.Send(notice);
        }
        return false;
    }

    /// <summary>
    /// Without a XEP-0388 user agent or a version answer naming it, the client software is named by the client identity
    /// of its verified caps (XEP-0115, e.g. "Gajim"), or else by the caps node of its first presence, for later
    /// notices and lists. A name taken from the caps node gives way to the caps' identity once that is known.
    /// </summary>
    private async ValueTask<bool> LearnSoftwareAsync(ClientRegistry registry, Session session)
    {
        var node = session.Presence?.GetChild("c", Ns.Caps)?.GetAttribute("node");
        var name = session.Caps?.Name ?? node;
        if (name is null || session.UserAgent?.Software is not null || !_clientOf.TryGetValue(session, out var id)) return false;
        var record = await registry.GetAsync(session.User, id);
        if (record is null || record.Software == name) return false;
        if (record.Software is not null && (session.Caps?.Name is null || record.Software != node)) return false;
        record.Software = name;
        await registry.SaveAsync(session.User, record);
        return false;
    }

    /// <summary>The client a session belongs to; for a session on another cluster node, worked out the way its node did.</summary>
    private string? ClientOf(Session session) =>
        _clientOf.TryGetValue(session, out var id) ? id
        : session.Node is null ? null
        : ClientRegistry.IdentifyClient(session.User, session.UserAgent, session.Jid.Resource!, session.Transport.RemoteAddress.ToString());

    private async ValueTask<bool> OnLogoutAsync(ClientRegistry registry, Session session)
    {
        // A dead cluster node's sessions end here on the node that speaks for them (ClusterNode).
        if (!_clientOf.TryRemove(session, out var id) && (id = ClientOf(session)) is null) return false;
        var record = await registry.GetAsync(session.User, id);
        if (record is null) return false;
        record.Sessions = Math.Max(0, record.Sessions - 1);
        record.LastSeen = DateTimeOffset.UtcNow;
        await registry.SaveAsync(session.User, record);
        return false;
    }

    private static Element Notice(XmppServer server, Session session, ClientRecord client, DateTimeOffset when, bool isNew)
    {
        var time = when.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";
        var software = client.Software ?? "unknown client software";
        if (client.Device is not null) software += $" on device \"{client.Device}\"";
        var tls = session.Transport.TlsProtocol ?? "no TLS";
        var line = $"{(isNew ? "New login" : "Login")} to your account: {software}, resource \"{session.Jid.Resource}\", " +
                   $"from {session.Transport.RemoteAddress} over {session.Transport.TransportName} at {time}, {tls}, {session.Mechanism}. " +
                   "If this was not you, revoke it (\"End other sessions\", or reply \"end others\") and change your password.";
        // What the operator last did to the account, so that every new login also shows whether something happened since.
        var latest = server.Audit.LatestAbout(session.Jid.Bare.ToString());
        if (latest is not null)
            line += $" The operator log's latest entry about your account is #{latest.Index}: {latest.Action} at {latest.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC.";
        var message = new Element("message", Ns.Client)
            .SetAttribute("from", server.Domain.ToString())
            .SetAttribute("type", "chat")
            .SetAttribute("id", "login-" + Guid.NewGuid().ToString("N")[..12]);
        message.AddChild("body").AddText(line);
        message.Add(new Element("login", NoticeNamespace)
            .SetAttribute("client-id", client.Id)
            .SetAttribute("new", isNew ? "true" : "false")
            .SetAttribute("jid", session.Jid.ToString())
            .SetAttribute("resource", session.Jid.Resource)
            .SetAttribute("address", session.Transport.RemoteAddress.ToString())
            .SetAttribute("transport", session.Transport.TransportName)
            .SetAttribute("time", XmppTime.FormatSeconds(when))
            .SetAttribute("tls", session.Transport.TlsProtocol)
            .SetAttribute("mechanism", session.Mechanism)
            .SetAttribute("software", client.Software)
            .SetAttribute("device", client.Device)
            .SetAttribute("operator-log-entry", latest?.Index.ToString(CultureInfo.InvariantCulture)));
        return message;
    }

    private async ValueTask<Element?> ListAsync(XmppServer server, ClientRegistry registry, IqRequest request)
    {
        if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "only the account itself");
        var clients = new Element("clients", CamNamespace);
        foreach (var record in await registry.ListAsync(request.From.Local!))
        {
            var connected = server.Sessions.Get(request.From.Local!).Any(s => ClientOf(s) == record.Id);
            var client = clients.AddChild("client")
                .SetAttribute("id", record.Id)
                .SetAttribute("type", "session")
                .SetAttribute("connected", connected ? "true" : "false");
            client.AddChild("first-seen").AddText(XmppTime.FormatSeconds(record.FirstSeen));
            client.AddChild("last-seen").AddText(XmppTime.FormatSeconds(record.LastSeen));
            client.AddChild("auth").AddChild("password");
            client.AddChild("permission").SetAttribute("status", "unrestricted");
            var agent = client.AddChild("user-agent");
            if (record.Software is not null) agent.AddChild("software").AddText(record.Software);
            var details = $"resource {record.Resource}, last from {record.LastAddress}, {record.Mechanism}";
            agent.AddChild("device").AddText(record.Device is null ? details : $"{record.Device} ({details})");
        }
        return request.Result(clients);
    }

    private async ValueTask<Element?> RevokeAsync(XmppServer server, ClientRegistry registry, IqRequest request)
    {
        if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "only the account itself");
        var id = request.Payload.GetAttribute("id");
        var user = request.From.Local!;
        if (id is null || await registry.GetAsync(user, id) is null) return request.Error(StanzaError.ItemNotFound, "no such client");
        await registry.RemoveAsync(user, id);
        if (server.FastTokens is { } tokens)
            await tokens.RevokeAsync(user, agentId => ClientRegistry.IdentifyClient(user, new UserAgent(agentId, null, null), "", "") == id);
        foreach (var session in server.Sessions.Get(user))
            if (ClientOf(session) == id)
                session.Close(StreamErrors.NotAuthorized, "access revoked by the account owner");
        return request.Result();
    }

    /// <summary>
    /// The account's clients as a table form (XEP-0004 reported/item) and, for clients that cannot draw one (Gajim
    /// 1.7) or show no forms (plain-text commands), the same list in the note, one client per line.
    /// </summary>
    private async ValueTask<AdHocResult> ListCommandAsync(XmppServer server, ClientRegistry registry, Jid requester)
    {
        var user = requester.Local!;
        var online = server.Sessions.Get(user);
        var note = new StringBuilder($"{online.Count} session(s) online.");
        var form = new Element("x", Ns.DataForms).SetAttribute("type", "result");
        form.AddChild("title").AddText("Clients of " + requester.Bare);
        var reported = form.AddChild("reported");
        foreach (var (var, label) in new[] { ("resource", "Resource"), ("software", "Software"), ("address", "Last address"), ("last-seen", "Last seen"), ("online", "Online") })
            reported.AddChild("field").SetAttribute("var", var).SetAttribute("label", label);
        foreach (var record in await registry.ListAsync(user))
        {
            var item = form.AddChild("item");
            var isOnline = online.Any(s => ClientOf(s) == record.Id);
            var software = record.Software is null ? "" : record.Device is null ? record.Software : $"{record.Software} on {record.Device}";
            var lastSeen = XmppTime.FormatSeconds(record.LastSeen);
            foreach (var (var, value) in new[] { ("resource", record.Resource), ("software", software), ("address", record.LastAddress), ("last-seen", lastSeen), ("online", isOnline ? "yes" : "no") })
                item.AddChild("field").SetAttribute("var", var).AddChild("value").AddText(value);
            note.Append(CultureInfo.InvariantCulture,
                $"\n{(isOnline ? "online" : "offline")}: {(software == "" ? "unknown client software" : software)}, resource \"{record.Resource}\", last from {record.LastAddress} at {lastSeen}");
        }
        return new AdHocResult(note.ToString(), form);
    }

    private static async ValueTask<AdHocResult> EndOthersCommand(XmppServer server, Jid requester)
    {
        var own = server.Sessions.Get(requester);
        // Their FAST tokens too, or the ended clients would log straight back in.
        if (server.FastTokens is { } tokens)
            await tokens.RevokeAsync(requester.Local!, agentId => agentId != own?.UserAgent?.Id);
        var ended = server.EndSessions(requester.Local!, StreamErrors.NotAuthorized, "ended by another session of this account", except: own);
        return new AdHocResult($"Ended {ended} other session(s).");
    }

    private static async ValueTask<bool> OnPasswordChangedAsync(XmppServer server, IArchiveStore pending, PasswordChange change)
    {
        var now = DateTimeOffset.UtcNow;
        var time = now.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";
        var by = change.By is null ? "by the operator" : $"from resource \"{change.By.Jid.Resource}\" at {change.By.Transport.RemoteAddress}";
        var notice = new Element("message", Ns.Client).SetAttribute("from", server.Domain.ToString()).SetAttribute("type", "chat");
        notice.AddChild("body").AddText($"The password of your account was changed {by} at {time}{(change.LogIndex is { } index ? OperatorChanges.Cite(index) : "")}.");
        var told = 0;
        foreach (var session in server.Sessions.Get(change.User))
        {
            if (session == change.By) continue;
            session.Send(notice.Clone().SetAttribute("to", session.Jid.ToString()));
            told++;
            if (server.Options.EndOtherSessionsOnPasswordChange)
                session.Close(StreamErrors.NotAuthorized, "the account's password was changed");
        }
        // An operator's change has no session of the owner that saw it happen: unless a session stays online
        // with the notice, keep it for the next login, like a login notice.
        if (change.By is null && (told == 0 || server.Options.EndOtherSessionsOnPasswordChange))
            await pending.AppendAsync(change.User, now, "", ElementWriter.ToXmlString(notice));
        return false;
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Error, Message = "The login notice for {Jid} failed")]
        public static partial void NoticeFailed(ILogger logger, Exception exception, Jid jid);
    }
}
