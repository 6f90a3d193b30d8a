using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

/// <summary>
/// Entity capabilities (XEP-0115) of every available session: the caps element of its presence names a
/// verification string; a string seen before is looked up in the cache, an unknown one is resolved by asking
/// the client's disco#info once, checking that the answer hashes to it (§5.4), and caching it by ver. Sessions
/// learn their <see cref="Session.Caps"/>; a change resolved in the background is reported to <c>changed</c>.
/// </summary>
public sealed class CapsTracker(XmppServer server, Func<Session, ClientCaps?, ValueTask> changed)
{
    private const int MaxCachedVers = 10_000;
    private static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, ClientCaps> _byVer = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Session, byte> _querying = new();

    /// <summary>Reads the caps of a session's broadcast presence; true when its caps are known now and changed.</summary>
    public bool Observe(Session session, Element presence)
    {
        if (presence.GetChild("c", Ns.Caps) is not { } c) return false;
        var ver = c.GetAttribute("ver");
        var hash = c.GetAttribute("hash");
        var node = c.GetAttribute("node");
        if (ver is null || hash is null || node is null || session.Caps?.Ver == ver) return false;
        if (_byVer.TryGetValue(ver, out var known))
        {
            session.Caps = known;
            return true;
        }
        // One question at a time per session: a client changing its caps in a loop does not make the server query in a loop.
        if (_querying.TryAdd(session, 0)) _ = ResolveAsync(session, node, ver, hash);
        return false;
    }

    public void Forget(Session session) => _querying.TryRemove(session, out _);

    private async Task ResolveAsync(Session session, string node, string ver, string hash)
    {
        try
        {
            var reply = await server.OutboundIq.GetAsync(session, new Element("query", Ns.DiscoInfo).SetAttribute("node", node + "#" + ver), QueryTimeout);
            // No answer, an error, or an answer that does not hash to ver: no known caps, so no PEP notifications.
            if (reply?.Type() != "result" || reply.GetChild("query", Ns.DiscoInfo) is not { } query) return;
            if (VerificationString(query, hash) != ver) return;
            var caps = new ClientCaps(ver, Features(query), ClientName(query));
            if (_byVer.Count >= MaxCachedVers) _byVer.Clear();
            _byVer[ver] = caps;
            if (session.IsClosed || session.Presence?.GetChild("c", Ns.Caps)?.GetAttribute("ver") != ver) return;
            var before = session.Caps;
            session.Caps = caps;
            await changed(session, before);
        }
        finally
        {
            _querying.TryRemove(session, out _);
        }
    }

    private static FrozenSet<string> Features(Element query) =>
        query.Elements.Where(e => e.Is("feature", Ns.DiscoInfo)).Select(e => e.GetAttribute("var") ?? "").ToFrozenSet(StringComparer.Ordinal);

    private static string? ClientName(Element query) =>
        query.Elements.Where(e => e.Is("identity", Ns.DiscoInfo) && e.GetAttribute("category") == "client")
            .Select(e => e.GetAttribute("name")).FirstOrDefault(n => !string.IsNullOrWhiteSpace(n));

    /// <summary>
    /// The verification string of a disco#info answer (XEP-0115 §5.1) under the named hash, or null when the
    /// answer is malformed in a way §5.4 says must not be cached (duplicate identities or features, forms
    /// without FORM_TYPE) or the hash function is not one the server supports.
    /// </summary>
    public static string? VerificationString(Element query, string hash)
    {
        HashAlgorithmName? algorithm = hash switch
        {
            "sha-1" => HashAlgorithmName.SHA1,
            "sha-256" => HashAlgorithmName.SHA256,
            "sha-512" => HashAlgorithmName.SHA512,
            _ => null,
        };
        if (algorithm is null) return null;
        var identities = query.Elements.Where(e => e.Is("identity", Ns.DiscoInfo))
            .Select(e => $"{e.GetAttribute("category")}/{e.GetAttribute("type")}/{e.GetAttribute("xml:lang")}/{e.GetAttribute("name")}")
            .ToList();
        var features = query.Elements.Where(e => e.Is("feature", Ns.DiscoInfo)).Select(e => e.GetAttribute("var") ?? "").ToList();
        if (identities.Distinct().Count() != identities.Count || features.Distinct().Count() != features.Count) return null;
        identities.Sort(string.CompareOrdinal);
        features.Sort(string.CompareOrdinal);
        var s = new StringBuilder();
        foreach (var identity in identities) s.Append(identity).Append('<');
        foreach (var feature in features) s.Append(feature).Append('<');
        var forms = new List<(string Type, string Text)>();
        foreach (var form in query.Elements.Where(e => e.Is("x", Ns.DataForms)))
        {
            var fields = NodeConfig.ReadForm(form);
            if (NodeConfig.FormType(fields) is not { } formType) return null;
            var text = new StringBuilder().Append(formType).Append('<');
            foreach (var (var, values) in fields.Where(f => f.Var != "FORM_TYPE").OrderBy(f => f.Var, StringComparer.Ordinal))
            {
                text.Append(var).Append('<');
                foreach (var value in values.Order(StringComparer.Ordinal)) text.Append(value).Append('<');
            }
            forms.Add((formType, text.ToString()));
        }
        foreach (var (_, text) in forms.OrderBy(f => f.Type, StringComparer.Ordinal)) s.Append(text);
        var bytes = Encoding.UTF8.GetBytes(s.ToString());
        var digest = algorithm.Value.Name switch
        {
            "SHA1" => SHA1.HashData(bytes),
            "SHA256" => SHA256.HashData(bytes),
            _ => SHA512.HashData(bytes),
        };
        return Convert.ToBase64String(digest);
    }
}
