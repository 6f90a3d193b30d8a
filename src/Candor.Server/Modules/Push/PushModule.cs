using System.Collections.Concurrent;
using Candor.Server.Core;
using Candor.Server.Modules.Pep;
using Candor.Server.Modules.StreamManagement;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Push;

/// <summary>
/// Push notifications (XEP-0357): a client enables them with the JID and node of its app server; when a message with
/// a body arrives for the account while that client is not connected (no session of it, by its resource or by the
/// SASL2 user agent id it logged in with, since Bind 2 gives it a new resource each time; or its stream management
/// session is waiting to be resumed), a notification is published to the app server from the account's
/// bare JID. By default the summary form carries only a message count: the app server (a third party) learns that
/// something arrived, not from whom or what; a client opts in to sender and body per registration with a
/// &lt;summary/&gt; child in <see cref="CandorNamespace"/>. Registrations are kept sealed, one list per account, and
/// held in memory so the message path reads no storage for accounts without them.
/// </summary>
public sealed class PushModule : IModule
{
    public const string Namespace = "urn:xmpp:push:0";
    public const string SummaryFormType = "urn:xmpp:push:summary";
    /// <summary>Candor's opt-in: &lt;summary xmlns='urn:xmpp:candor:push:0' sender='true' body='true'/&gt; inside &lt;enable/&gt;.</summary>
    public const string CandorNamespace = "urn:xmpp:candor:push:0";
    /// <summary>Registrations per account (one per device and app server).</summary>
    public const int MaxRegistrations = 20;

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0357", "0.4.1", "enable/disable; summary notifications without sender or body unless the client opts in (urn:xmpp:candor:push:0)"),
    ];

    private readonly ConcurrentDictionary<string, Registration[]> _registrations = new(StringComparer.Ordinal);
    private Task _loaded = Task.CompletedTask;

    public void Register(XmppServer server)
    {
        var store = server.Storage.OpenKeyValue("push");
        _loaded = LoadAsync(store);
        server.Disco.AccountFeatures.Add(Namespace);
        server.Iq.Register(IqScope.Account, "set", "enable", Namespace, request => EnableAsync(store, request));
        server.Iq.Register(IqScope.Account, "set", "disable", Namespace, request => DisableAsync(store, request));
        // Observers: they publish and let delivery (or offline storage) go on.
        server.Hooks.MessageToBare.Add(ev => NotifyAsync(server, ev), Priority.Observe);
        server.Hooks.MessageToFull.Add(ev => NotifyAsync(server, ev), Priority.Observe);
        server.Hooks.SessionStarted.Add(session => ResetCount(session), Priority.Observe);
    }

    private async Task LoadAsync(IKeyValueStore store)
    {
        foreach (var user in await store.ListUsersAsync())
            if (await store.GetAsync(user) is { } stored)
                _registrations[user] = Registration.ParseAll(stored);
    }

    private async ValueTask<Element?> EnableAsync(IKeyValueStore store, IqRequest request)
    {
        if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "push notifications are enabled by the account itself");
        var enable = request.Payload;
        if (!Jid.TryParse(enable.GetAttribute("jid") ?? "", out var appServer))
            return request.Error(StanzaError.BadRequest, "'jid' must be the app server's JID");
        if (enable.GetAttribute("node") is not { Length: > 0 } node)
            return request.Error(StanzaError.BadRequest, "'node' must name the app server's node");
        var form = enable.Elements.FirstOrDefault(e => e.Is("x", Ns.DataForms));
        if (form is not null && NodeConfig.FormType(NodeConfig.ReadForm(form)) != PubSubNs.PublishOptions)
            return request.Error(StanzaError.BadRequest, "the form must be of type " + PubSubNs.PublishOptions);
        var summary = enable.GetChild("summary", CandorNamespace);
        var registration = new Registration(appServer, node, request.From.Resource ?? "", request.Origin?.UserAgent?.Id,
            summary?.GetAttribute("sender") is "true" or "1", summary?.GetAttribute("body") is "true" or "1",
            form is null ? null : ElementWriter.ToXmlString(form));
        var user = request.To.Local!;
        var kept = await ChangeAsync(store, user, list => list.Where(r => !r.Same(appServer, node)).Append(registration).ToArray());
        if (kept.Length > MaxRegistrations)
        {
            await ChangeAsync(store, user, list => list.Where(r => r != registration).ToArray());
            return request.Error(StanzaError.ResourceConstraint, $"an account can have at most {MaxRegistrations} push registrations");
        }
        return request.Result();
    }

    private async ValueTask<Element?> DisableAsync(IKeyValueStore store, IqRequest request)
    {
        if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "push notifications are disabled by the account itself");
        if (!Jid.TryParse(request.Payload.GetAttribute("jid") ?? "", out var appServer))
            return request.Error(StanzaError.BadRequest, "'jid' must be the app server's JID");
        // XEP-0357 §6: without 'node', every registration with that app server goes.
        var node = request.Payload.GetAttribute("node");
        await ChangeAsync(store, request.To.Local!, list => list.Where(r => !(r.AppServer == appServer && (node is null || r.Node == node))).ToArray());
        return request.Result();
    }

    private readonly SemaphoreSlim _changes = new(1, 1);

    private async Task<Registration[]> ChangeAsync(IKeyValueStore store, string user, Func<Registration[], Registration[]> change)
    {
        await _loaded;
        await _changes.WaitAsync();
        try
        {
            var list = change(_registrations.GetValueOrDefault(user) ?? []);
            await store.SetAsync(user, list.Length == 0 ? null : Registration.FormatAll(list));
            if (list.Length == 0) _registrations.TryRemove(user, out _);
            else _registrations[user] = list;
            return list;
        }
        finally
        {
            _changes.Release();
        }
    }

    private ValueTask<bool> NotifyAsync(XmppServer server, StanzaEvent ev)
    {
        // Every message passes here: without a registration for the recipient, no state machine. (Not IsEmpty: on an
        // empty ConcurrentDictionary that takes all of its locks.)
        if (_loaded.IsCompleted && !_registrations.ContainsKey(ev.To.Local!)) return ValueTask.FromResult(false);
        return NotifyRegisteredAsync(server, ev);
    }

    private async ValueTask<bool> NotifyRegisteredAsync(XmppServer server, StanzaEvent ev)
    {
        await _loaded;
        if (!_registrations.TryGetValue(ev.To.Local!, out var registrations)) return false;
        if (ev.Type is "error" or "groupchat" or "headline" || ev.Stanza.GetChild("body", Ns.Client) is null) return false;
        var sessions = server.Sessions.Get(ev.To.Local!);
        foreach (var registration in registrations)
        {
            if (IsConnected(sessions, registration)) continue;
            var count = Interlocked.Increment(ref registration.Count);
            var notification = registration.Notification(ev, count);
            await server.Router.DeliverAsync(notification, ev.To.Bare, registration.AppServer);
        }
        return false;
    }

    /// <summary>A session of the registering client that is attached to a connection.</summary>
    private static bool IsConnected(IReadOnlyList<Session> sessions, Registration registration)
    {
        foreach (var session in sessions)
            if (registration.IsClient(session) && session.Transport is not SmSession { IsDetached: true }) return true;
        return false;
    }

    /// <summary>The client is back: the next notification counts from one again.</summary>
    private ValueTask<bool> ResetCount(Session session)
    {
        if (_registrations.TryGetValue(session.User, out var registrations))
            foreach (var registration in registrations)
                if (registration.IsClient(session)) Interlocked.Exchange(ref registration.Count, 0);
        return ValueTask.FromResult(false);
    }

    /// <summary>One client's registration: the app server and node, what the summary may carry, the publish options it gave.</summary>
    private sealed class Registration(Jid appServer, string node, string resource, string? clientId, bool sender, bool body, string? publishOptions)
    {
        public Jid AppServer { get; } = appServer;
        public string Node { get; } = node;
        /// <summary>The resource of the client that enabled it: notifications go while that client is not connected.</summary>
        public string Resource { get; } = resource;
        /// <summary>The SASL2 user agent id of that client, when it gave one (XEP-0388).</summary>
        public string? ClientId { get; } = clientId;

        public bool IsClient(Session session) =>
            session.Jid.Resource == Resource || (ClientId is not null && session.UserAgent?.Id == ClientId);
        /// <summary>Messages notified since the client was last connected (XEP-0357 message-count).</summary>
        public int Count;

        public bool Same(Jid appServer, string node) => AppServer == appServer && Node == node;

        public Element Notification(StanzaEvent ev, int count)
        {
            var form = new Element("x", Ns.DataForms).SetAttribute("type", "submit");
            Field(form, "FORM_TYPE", SummaryFormType);
            Field(form, "message-count", count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (sender) Field(form, "last-message-sender", ev.From.ToString());
            if (body) Field(form, "last-message-body", ev.Stanza.GetChild("body", Ns.Client)!.Text);
            var pubsub = new Element("pubsub", PubSubNs.PubSub);
            pubsub.AddChild("publish").SetAttribute("node", Node).AddChild("item").Add(new Element("notification", Namespace).Add(form));
            if (publishOptions is not null) pubsub.AddChild("publish-options").Add(StoredStanza.Parse(publishOptions));
            return new Element("iq", Ns.Client).SetAttribute("type", "set").SetAttribute("id", "push-" + Guid.NewGuid().ToString("N")[..16])
                .SetAttribute("from", ev.To.Bare.ToString()).SetAttribute("to", AppServer.ToString()).Add(pubsub);

            static void Field(Element form, string var, string value) =>
                form.AddChild("field").SetAttribute("var", var).AddChild("value").AddText(value);
        }

        public Element ToElement()
        {
            var element = new Element("registration", CandorNamespace).SetAttribute("jid", AppServer.ToString()).SetAttribute("node", Node)
                .SetAttribute("resource", Resource).SetAttribute("client", ClientId).SetAttribute("sender", sender ? "true" : null).SetAttribute("body", body ? "true" : null);
            if (publishOptions is not null) element.Add(StoredStanza.Parse(publishOptions));
            return element;
        }

        public static Registration FromElement(Element e)
        {
            var form = e.Elements.FirstOrDefault(x => x.Is("x", Ns.DataForms));
            return new Registration(Jid.Parse(e.GetAttribute("jid")!), e.GetAttribute("node")!, e.GetAttribute("resource") ?? "", e.GetAttribute("client"),
                e.GetAttribute("sender") == "true", e.GetAttribute("body") == "true", form is null ? null : ElementWriter.ToXmlString(form));
        }

        public static string FormatAll(IEnumerable<Registration> list)
        {
            var root = new Element("registrations", CandorNamespace);
            foreach (var registration in list) root.Add(registration.ToElement());
            return ElementWriter.ToXmlString(root);
        }

        public static Registration[] ParseAll(string stored) =>
            [.. StoredStanza.Parse(stored).Elements.Where(e => e.Is("registration", CandorNamespace)).Select(FromElement)];
    }
}
