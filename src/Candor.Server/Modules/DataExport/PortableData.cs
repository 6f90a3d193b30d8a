using System.Globalization;
using System.Text.Json;
using Candor.Server.Accounts;
using Candor.Server.Core;
using Candor.Server.Modules.Archive;
using Candor.Server.Modules.Pep;
using Candor.Server.Modules.Roster;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Modules.DataExport;

/// <summary>
/// XEP-0227 (Portable Import/Export Format, 1.1) for one account, in the shape Prosody's mod_storage_xep0227 reads and
/// writes (and reads ejabberd's export_piefxis files too: XIncluded host files, its double-base64 SCRAM values): &lt;server-data&gt;&lt;host&gt;&lt;user name=…&gt; with SCRAM credentials (urn:xmpp:pie:0#scram), roster, pending
/// subscription requests (&lt;presence type='subscribe'/&gt;), offline messages, private XML, vCard, PEP nodes
/// (items in pubsub, configuration in pubsub#owner) and the message archive (urn:xmpp:pie:0#mam). Reads and writes the
/// stores directly, so the <c>candor user export|import</c> commands can use it without a server.
/// </summary>
public static class PortableData
{
    public const string Namespace = "urn:xmpp:pie:0";
    public const string ScramNamespace = "urn:xmpp:pie:0#scram";
    public const string MamNamespace = "urn:xmpp:pie:0#mam";
    private const string MamResultNamespace = "urn:xmpp:mam:2";
    private const string ForwardNamespace = "urn:xmpp:forward:0";
    private const string OldNamespace = "http://www.xmpp.org/extensions/xep-0227.html#ns";
    private const string XIncludeNamespace = "http://www.w3.org/2001/XInclude";

    /// <summary>
    /// The account's data as a XEP-0227 document. <paramref name="credentials"/>: include the SCRAM credentials (for a
    /// migration by the operator; a user's own export leaves them out, as a leaked copy would allow guessing the password offline).
    /// </summary>
    public static async Task<Element> ExportAsync(AccountStore accounts, string domain, string user, bool credentials)
    {
        var storage = accounts.Storage;
        var root = new Element("server-data", Namespace);
        var account = root.AddChild("host").SetAttribute("jid", domain).AddChild("user").SetAttribute("name", user);
        if (credentials)
            foreach (var algorithm in new[] { ScramAlgorithm.Sha1, ScramAlgorithm.Sha256 })
                if (await accounts.GetCredentialAsync(user, algorithm) is { } c)
                {
                    var scram = account.AddChild("scram-credentials", ScramNamespace).SetAttribute("mechanism", algorithm == ScramAlgorithm.Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256");
                    scram.AddChild("iter-count").AddText(c.Iterations.ToString(CultureInfo.InvariantCulture));
                    scram.AddChild("salt").AddText(Convert.ToBase64String(c.Salt));
                    scram.AddChild("server-key").AddText(Convert.ToBase64String(c.ServerKey));
                    scram.AddChild("stored-key").AddText(Convert.ToBase64String(c.StoredKey));
                }

        var roster = new Element("query", Ns.Roster);
        foreach (var json in (await storage.OpenMap("roster").GetAllAsync(user)).Values)
        {
            var item = JsonSerializer.Deserialize(json, RosterJson.Default.RosterItem)!;
            if (item.PendingIn) account.Add(new Element("presence", Ns.Client).SetAttribute("from", item.Jid).SetAttribute("type", "subscribe"));
            if (!item.Hidden) roster.Add(RosterManager.ToElement(item));
        }
        account.Add(roster);

        var offline = await storage.OpenArchive("offline").QueryAsync(user, ArchiveQuery.All);
        if (offline.Count > 0)
        {
            var messages = account.AddChild("offline-messages", Namespace);
            foreach (var item in offline) messages.Add(StoredStanza.Parse(item.Value));
        }

        var privateXml = await storage.OpenMap("private").GetAllAsync(user);
        if (privateXml.Count > 0)
        {
            var query = account.AddChild("query", Ns.Private);
            foreach (var xml in privateXml.Values) query.Add(StoredStanza.Parse(xml));
        }

        if (await storage.OpenKeyValue("vcard").GetAsync(user) is { } vcard) account.Add(StoredStanza.Parse(vcard));

        var nodes = (await storage.OpenMap("pep").GetAllAsync(user)).Values.Select(json => JsonSerializer.Deserialize(json, PepJson.Default.PepNode)!).ToList();
        if (nodes.Count > 0)
        {
            var owner = account.AddChild("pubsub", PubSubNs.Owner);
            var items = account.AddChild("pubsub", PubSubNs.PubSub);
            foreach (var node in nodes)
            {
                owner.AddChild("configure").SetAttribute("node", node.Name).Add(node.Config.ToForm(type: "submit"));
                var list = items.AddChild("items").SetAttribute("node", node.Name);
                foreach (var item in node.Items) list.AddChild("item").SetAttribute("id", item.Id).Add(item.Payload);
            }
        }

        var archived = await storage.OpenArchive(ArchiveModule.StoreName).QueryAsync(user, ArchiveQuery.All);
        if (archived.Count > 0)
        {
            var archive = account.AddChild("archive", MamNamespace);
            foreach (var item in archived)
            {
                var forwarded = archive.AddChild("result", MamResultNamespace).SetAttribute("id", item.Key ?? item.Id.ToString(CultureInfo.InvariantCulture))
                    .AddChild("forwarded", ForwardNamespace);
                forwarded.AddChild("delay", Ns.Delay).SetAttribute("stamp", XmppTime.Format(item.When));
                forwarded.Add(StoredStanza.Parse(item.Value));
            }
        }
        return root;
    }

    /// <summary>Reads a XEP-0227 document given as text (XInclude is not followed: see <see cref="Load"/>).</summary>
    public static Element Parse(string text)
    {
        var root = ParseDocument(text);
        if (!root.Is("server-data", Namespace)) throw new InvalidDataException($"not a XEP-0227 file: the root is <{root.Name} xmlns='{root.Namespace}'>, not <server-data xmlns='{Namespace}'>");
        return root;
    }

    /// <summary>
    /// Reads a XEP-0227 file as Prosody or ejabberd write it. ejabberd's <c>export_piefxis</c> writes a &lt;server-data/&gt;
    /// file that XIncludes one &lt;host/&gt; file per domain; those are read from the same directory (a bare file name only).
    /// A host file alone is read as well, and so is the namespace of XEP-0227 before 1.0 (older ejabberd).
    /// </summary>
    public static Element Load(string path)
    {
        var root = ParseDocument(File.ReadAllText(path));
        if (root.Is("host", Namespace)) root = new Element("server-data", Namespace).Add(root);
        if (!root.Is("server-data", Namespace)) return Parse(ElementWriter.ToXmlString(root));
        foreach (var include in root.Elements.Where(e => e.Is("include", XIncludeNamespace)).ToList())
        {
            var href = include.GetAttribute("href");
            if (string.IsNullOrEmpty(href) || Path.GetFileName(href) != href)
                throw new InvalidDataException($"XInclude of '{href}': only a file in the same directory is read");
            var included = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, href);
            if (!File.Exists(included)) throw new InvalidDataException($"the file includes {href}, which is not beside it");
            var host = ParseDocument(File.ReadAllText(included));
            if (!host.Is("host", Namespace)) throw new InvalidDataException($"{href}: the root is <{host.Name}>, not a XEP-0227 <host>");
            root.RemoveChild(include);
            root.Add(host);
        }
        return root;
    }

    private static Element ParseDocument(string text)
    {
        text = text.TrimStart('\uFEFF').TrimStart();
        if (text.StartsWith("<?xml", StringComparison.Ordinal)) text = text[(text.IndexOf("?>", StringComparison.Ordinal) + 2)..];
        var root = StoredStanza.Parse(text.Trim());
        if (root.Namespace == OldNamespace) Rename(root);
        return root;

        static void Rename(Element element)
        {
            if (element.Namespace == OldNamespace) element.Namespace = Namespace;
            foreach (var child in element.Elements) Rename(child);
        }
    }

    /// <summary>The accounts a document holds for <paramref name="domain"/>.</summary>
    public static IEnumerable<Element> UsersOf(Element serverData, string domain) =>
        serverData.Elements.Where(h => h.Is("host", Namespace) && string.Equals(h.GetAttribute("jid"), domain, StringComparison.OrdinalIgnoreCase))
            .SelectMany(h => h.Elements.Where(u => u.Is("user", Namespace)));

    /// <summary>
    /// Creates the account a &lt;user/&gt; element describes, with its data; null when done, else why not (the account
    /// exists, no usable credentials, a malformed name). The account logs in with the same password: SCRAM credentials are
    /// kept as they are (a SHA-1-only account gains SHA-256 at its first PLAIN login), a plain password is hashed.
    /// </summary>
    public static async Task<string?> ImportAsync(AccountStore accounts, string domain, Element account)
    {
        var name = account.GetAttribute("name");
        if (name is null || !Jid.TryParse(name + "@" + domain, out var jid) || jid.Local is null || !jid.IsBare) return $"'{name}' is not a valid user name";
        var user = jid.Local;
        var storage = accounts.Storage;
        var sha1 = Credential(account, ScramAlgorithm.Sha1);
        var sha256 = Credential(account, ScramAlgorithm.Sha256);
        var created = account.GetAttribute("password") is { Length: > 0 } password
            ? await accounts.CreateAsync(user, password)
            : sha1 is null && sha256 is null ? (bool?)null : await accounts.ImportAsync(user, sha1, sha256);
        if (created is null) return $"{jid} has no password or SCRAM-SHA-1/SCRAM-SHA-256 credentials";
        if (created is false) return $"{jid} exists already";

        var roster = storage.OpenMap("roster");
        var items = new Dictionary<string, RosterItem>(StringComparer.Ordinal);
        foreach (var element in account.GetChild("query", Ns.Roster)?.Elements ?? [])
        {
            if (!element.Is("item", Ns.Roster) || !Jid.TryParse(element.GetAttribute("jid") ?? "", out var contact) || contact.Bare == jid) continue;
            var item = new RosterItem
            {
                Jid = contact.Bare.ToString(),
                Name = element.GetAttribute("name"),
                Subscription = element.GetAttribute("subscription") switch { "to" => Subscription.To, "from" => Subscription.From, "both" => Subscription.Both, _ => Subscription.None },
                PendingOut = element.GetAttribute("ask") == "subscribe",
                Approved = element.GetAttribute("approved") == "true",
                Groups = [.. element.Elements.Where(g => g.Is("group", Ns.Roster)).Select(g => g.Text).Distinct()],
            };
            items[item.Jid] = item;
        }
        // Prosody writes these without an xmlns of their own, so they are in the file's namespace.
        foreach (var request in account.Elements.Where(e => e.Name == "presence" && (e.Namespace is Ns.Client or Namespace) && e.GetAttribute("type") == "subscribe"))
        {
            if (!Jid.TryParse(request.GetAttribute("from") ?? "", out var from)) continue;
            var key = from.Bare.ToString();
            if (!items.TryGetValue(key, out var item)) items[key] = item = new RosterItem { Jid = key, Hidden = true };
            item.PendingIn = true;
        }
        foreach (var item in items.Values) await roster.SetAsync(user, item.Jid, JsonSerializer.Serialize(item, RosterJson.Default.RosterItem));

        var offline = storage.OpenArchive("offline");
        foreach (var message in account.GetChild("offline-messages", Namespace)?.Elements ?? [])
        {
            message.Namespace = Ns.Client;
            var when = XmppTime.TryParse(message.GetChild("delay", Ns.Delay)?.GetAttribute("stamp"), out var stamp) ? stamp : DateTimeOffset.UtcNow;
            var from = Jid.TryParse(message.GetAttribute("from") ?? "", out var sender) ? sender.Bare.ToString() : domain;
            await offline.AppendAsync(user, when, from, ElementWriter.ToXmlString(message));
        }

        var privateXml = storage.OpenMap("private");
        foreach (var data in account.GetChild("query", Ns.Private)?.Elements ?? [])
            await privateXml.SetAsync(user, "{" + data.Namespace + "}" + data.Name, ElementWriter.ToXmlString(data));

        if (account.GetChild("vCard", Ns.VCard) is { } vcard) await storage.OpenKeyValue("vcard").SetAsync(user, ElementWriter.ToXmlString(vcard));

        var nodes = new Dictionary<string, PepNode>(StringComparer.Ordinal);
        PepNode NodeOf(string nodeName) => nodes.TryGetValue(nodeName, out var node) ? node : nodes[nodeName] = new PepNode { Name = nodeName };
        foreach (var configure in account.GetChild("pubsub", PubSubNs.Owner)?.Elements ?? [])
            if (configure.Name == "configure" && configure.GetAttribute("node") is { } nodeName
                && NodeOf(nodeName).Config.Apply(NodeConfig.ReadForm(configure.GetChild("x", Ns.DataForms)), int.MaxValue, strict: false) is { Config: { } config })
                NodeOf(nodeName).Config = config;
        foreach (var list in account.GetChild("pubsub", PubSubNs.PubSub)?.Elements ?? [])
            if (list.Name == "items" && list.GetAttribute("node") is { } nodeName)
                foreach (var item in list.Elements.Where(i => i.Name == "item" && i.FirstElement is not null))
                    NodeOf(nodeName).Items.Add(new PepItem { Id = item.GetAttribute("id") ?? Guid.NewGuid().ToString("N"), Xml = ElementWriter.ToXmlString(item.FirstElement!), Published = DateTimeOffset.UtcNow });
        var pep = storage.OpenMap("pep");
        foreach (var node in nodes.Values) await pep.SetAsync(user, node.Name, JsonSerializer.Serialize(node, PepJson.Default.PepNode));

        var archived = new List<ArchiveEntry>();
        var self = jid.ToString();
        foreach (var result in account.GetChild("archive", MamNamespace)?.Elements ?? [])
        {
            var forwarded = result.GetChild("forwarded", ForwardNamespace);
            if (forwarded?.GetChild("message", Ns.Client) is not { } message) continue;
            var when = XmppTime.TryParse(forwarded.GetChild("delay", Ns.Delay)?.GetAttribute("stamp"), out var stamp) ? stamp : DateTimeOffset.UtcNow;
            var to = Jid.TryParse(message.GetAttribute("to") ?? "", out var t) ? t.Bare.ToString() : self;
            var from = Jid.TryParse(message.GetAttribute("from") ?? "", out var f) ? f.Bare.ToString() : self;
            archived.Add(new ArchiveEntry(user, result.GetAttribute("id") ?? RandomIds.Uuid7(DateTimeOffset.UtcNow), when, to == self ? from : to, ElementWriter.ToXmlString(message)));
        }
        if (archived.Count > 0) await storage.OpenArchive(ArchiveModule.StoreName).AppendBatchAsync(archived);
        return null;
    }

    private static ScramCredential? Credential(Element account, ScramAlgorithm algorithm)
    {
        var mechanism = algorithm == ScramAlgorithm.Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
        var scram = account.Elements.FirstOrDefault(e => e.Is("scram-credentials", ScramNamespace) && e.GetAttribute("mechanism") == mechanism);
        if (scram is null) return null;
        try
        {
            var storedKey = Convert.FromBase64String(scram.GetChildText("stored-key", ScramNamespace) ?? "");
            // ejabberd (23.01) writes the base64 text it stores base64-encoded once more: a key of the wrong size is decoded again.
            var twice = storedKey.Length != algorithm.HashSize();
            byte[] Read(string name)
            {
                var bytes = Convert.FromBase64String(scram.GetChildText(name, ScramNamespace) ?? "");
                return twice ? Convert.FromBase64String(System.Text.Encoding.ASCII.GetString(bytes)) : bytes;
            }
            var credential = new ScramCredential(algorithm, Read("salt"), int.Parse(scram.GetChildText("iter-count", ScramNamespace) ?? "", CultureInfo.InvariantCulture),
                Read("stored-key"), Read("server-key"));
            return credential.StoredKey.Length == algorithm.HashSize() && credential.ServerKey.Length == algorithm.HashSize() ? credential : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
