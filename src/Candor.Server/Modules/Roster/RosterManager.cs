using System.Globalization;
using System.Text.Json;
using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Roster;

/// <summary>
/// Rosters as stored (map "roster": contact bare JID → item; keyval "roster-version"), with the version
/// counter of XEP-0237 and roster pushes to the account's interested resources (RFC 6121 §2.1.6).
/// </summary>
public sealed class RosterManager(XmppServer server)
{
    private readonly IMapStore _items = server.Storage.OpenMap("roster");
    private readonly IKeyValueStore _versions = server.Storage.OpenKeyValue("roster-version");

    /// <summary>An account's roster changed (the account's name is passed); caches of roster facts drop their copy.</summary>
    public event Action<string>? Changed;

    /// <summary>What other nodes of a cluster cache of rosters (see <see cref="AccountCaches"/>).</summary>
    public const string CacheName = "roster";

    private void OnChanged(string user)
    {
        Changed?.Invoke(user);
        server.Caches.Wrote(CacheName, user);
    }

    public async Task<IReadOnlyList<RosterItem>> GetAllAsync(string user)
    {
        var stored = await _items.GetAllAsync(user);
        return [.. stored.Values.Select(Deserialize)];
    }

    public async Task<RosterItem?> GetAsync(string user, Jid contact)
    {
        var json = await _items.GetAsync(user, contact.Bare.ToString());
        return json is null ? null : Deserialize(json);
    }

    public async Task<int> CountAsync(string user) => (await _items.GetAllAsync(user)).Count;

    public async Task<string> GetVersionAsync(string user) => await _versions.GetAsync(user) ?? "0";

    /// <summary>Stores the item, bumps the version and pushes it to interested resources (unless hidden).</summary>
    public async Task SaveAsync(string user, RosterItem item)
    {
        await _items.SetAsync(user, item.Jid, JsonSerializer.Serialize(item, RosterJson.Default.RosterItem));
        OnChanged(user);
        var version = await BumpVersionAsync(user);
        if (!item.Hidden) Push(user, ToElement(item), version);
    }

    public async Task RemoveAsync(string user, string contact)
    {
        await _items.SetAsync(user, contact, null);
        OnChanged(user);
        var version = await BumpVersionAsync(user);
        Push(user, new Element("item", Ns.Roster).SetAttribute("jid", contact).SetAttribute("subscription", "remove"), version);
    }

    private async Task<string> BumpVersionAsync(string user)
    {
        var next = (long.Parse(await GetVersionAsync(user), CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture);
        await _versions.SetAsync(user, next);
        return next;
    }

    private void Push(string user, Element item, string version)
    {
        foreach (var session in server.Sessions.Get(user))
        {
            if (!session.IsInterested) continue;
            var push = Stanza.CreateIq("set", "push-" + Guid.NewGuid().ToString("N")[..12], null, session.Jid);
            push.Add(new Element("query", Ns.Roster).SetAttribute("ver", version).Add(item));
            session.Send(push);
        }
    }

    public static Element ToElement(RosterItem item)
    {
        var element = new Element("item", Ns.Roster)
            .SetAttribute("jid", item.Jid)
            .SetAttribute("name", item.Name)
            .SetAttribute("subscription", RosterItem.ToName(item.Subscription));
        if (item.PendingOut) element.SetAttribute("ask", "subscribe");
        if (item.Approved) element.SetAttribute("approved", "true");
        foreach (var group in item.Groups) element.AddChild("group").AddText(group);
        return element;
    }

    private static RosterItem Deserialize(string json) => JsonSerializer.Deserialize(json, RosterJson.Default.RosterItem)!;
}
