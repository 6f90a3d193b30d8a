using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Archive;

/// <summary>
/// An account's archiving preferences (XEP-0441, the &lt;prefs/&gt; of urn:xmpp:mam:2): the default for
/// correspondents on no list ("always", "roster" or "never"), and bare JIDs always or never archived.
/// A JID on both lists is never archived: the narrower wish wins.
/// </summary>
public sealed record ArchivePrefs(string Default, IReadOnlySet<string> Always, IReadOnlySet<string> Never)
{
    public static readonly string[] Defaults = ["always", "roster", "never"];

    public static ArchivePrefs Of(string defaultPolicy) => new(defaultPolicy, new HashSet<string>(), new HashSet<string>());

    /// <summary>The list's verdict for a bare JID: true always, false never, null when on neither list.</summary>
    public bool? Listed(string bareJid) =>
        Never.Contains(bareJid) ? false : Always.Contains(bareJid) ? true : null;

    public Element ToElement()
    {
        var prefs = new Element("prefs", ArchiveModule.Namespace).SetAttribute("default", Default);
        var always = prefs.AddChild("always");
        foreach (var jid in Always.Order(StringComparer.Ordinal)) always.AddChild("jid").AddText(jid);
        var never = prefs.AddChild("never");
        foreach (var jid in Never.Order(StringComparer.Ordinal)) never.AddChild("jid").AddText(jid);
        return prefs;
    }

    /// <summary>Reads a &lt;prefs/&gt; element; null (with the reason) when it is not valid.</summary>
    public static ArchivePrefs? Parse(Element prefs, out string? error)
    {
        error = null;
        var policy = prefs.GetAttribute("default");
        if (policy is null || !Defaults.Contains(policy))
        {
            error = "default must be always, roster or never";
            return null;
        }
        var always = Jids(prefs.GetChild("always", ArchiveModule.Namespace), ref error);
        var never = Jids(prefs.GetChild("never", ArchiveModule.Namespace), ref error);
        return error is null ? new ArchivePrefs(policy, always, never) : null;
    }

    private static HashSet<string> Jids(Element? list, ref string? error)
    {
        var jids = new HashSet<string>(StringComparer.Ordinal);
        if (list is null) return jids;
        foreach (var item in list.Elements)
        {
            if (item.Name != "jid") continue;
            if (Jid.TryParse(item.Text, out var jid)) jids.Add(jid.Bare.ToString());
            else error ??= $"'{item.Text}' is not a JID";
        }
        return jids;
    }
}
