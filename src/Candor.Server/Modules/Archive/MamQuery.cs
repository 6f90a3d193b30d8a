using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Archive;

/// <summary>
/// The query side of XEP-0313 (with #extended) over any archive store: a user's archive here, a room's later.
/// The caller decides who may query which archive (<paramref name="owner"/> is the store's account key,
/// <c>archive</c> the JID the archive belongs to, which signs results and stanza-ids).
/// Paging is XEP-0059 over the archive's UIDs (the stanza-ids), both ways, with count, first index and complete.
/// </summary>
public static class MamQuery
{
    public const string Rsm = "http://jabber.org/protocol/rsm";
    public const string Forward = "urn:xmpp:forward:0";
    /// <summary>Results per page at most, whatever the client asks; also the page without an RSM max.</summary>
    public const int MaxPage = 250;

    /// <summary>The form of supported filters (query of type get).</summary>
    public static Element Form()
    {
        var form = new Element("x", Ns.DataForms).SetAttribute("type", "form");
        form.AddChild("field").SetAttribute("var", "FORM_TYPE").SetAttribute("type", "hidden").AddChild("value").AddText(ArchiveModule.Namespace);
        foreach (var (var, type) in new[] { ("with", "jid-single"), ("start", "text-single"), ("end", "text-single"), ("before-id", "text-single"), ("after-id", "text-single") })
            form.AddChild("field").SetAttribute("var", var).SetAttribute("type", type);
        var ids = form.AddChild("field").SetAttribute("var", "ids").SetAttribute("type", "list-multi");
        ids.AddChild("validate", "http://jabber.org/protocol/xdata-validate").SetAttribute("datatype", "xs:string").AddChild("open");
        return new Element("query", ArchiveModule.Namespace).Add(form);
    }

    /// <summary>Runs a query (IQ set): sends the matching messages to <paramref name="recipient"/>, then returns the IQ result with &lt;fin/&gt;, or an error.</summary>
    public static async ValueTask<Element> RunAsync(IqRequest request, IArchiveStore store, string owner, Jid archive, Session recipient)
    {
        var payload = request.Payload;
        if (payload.GetAttribute("node") is not null)
            return request.Error(StanzaError.FeatureNotImplemented, "this archive has no pubsub nodes");
        var (filter, error) = await ReadFormAsync(request, store, owner);
        if (error is not null) return error;

        var max = MaxPage;
        string? after = null, before = null;
        var backwards = false;
        if (payload.GetChild("set", Rsm) is { } set)
        {
            if (set.GetChild("max", Rsm) is { } maxElement)
            {
                if (!int.TryParse(maxElement.Text, out max) || max < 0) return request.Error(StanzaError.BadRequest, "RSM max must be a number of items");
                max = Math.Min(max, MaxPage);
            }
            if (set.GetChild("index", Rsm) is not null) return request.Error(StanzaError.FeatureNotImplemented, "RSM index is not supported: page with before and after");
            after = NullIfEmpty(set.GetChild("after", Rsm)?.Text);
            if (set.GetChild("before", Rsm) is { } beforeElement)
            {
                backwards = true;
                before = NullIfEmpty(beforeElement.Text);
            }
            if (after is not null && backwards)
                return request.Error(StanzaError.BadRequest, "RSM before and after together are undefined: use the before-id and after-id fields for a range");
        }

        var page = filter with { Limit = max + 1, Newest = backwards };
        if (after is not null)
        {
            if (await RowOfAsync(store, owner, after) is not { } row) return request.Error(StanzaError.ItemNotFound, $"no message {after} in the archive");
            page = page with { AfterId = Math.Max(row, filter.AfterId ?? long.MinValue) };
        }
        if (before is not null)
        {
            if (await RowOfAsync(store, owner, before) is not { } row) return request.Error(StanzaError.ItemNotFound, $"no message {before} in the archive");
            page = page with { BeforeId = Math.Min(row, filter.BeforeId ?? long.MaxValue) };
        }

        var items = await store.QueryAsync(owner, page);
        var complete = items.Count <= max;
        var results = complete ? items.ToList() : items.Take(max).ToList();
        if (backwards) results.Reverse();
        var count = await store.CountAsync(owner, filter);

        var queryId = payload.GetAttribute("queryid");
        var flip = payload.GetChild("flip-page", ArchiveModule.Namespace) is not null;
        for (var i = 0; i < results.Count; i++)
            recipient.Send(Result(results[flip ? results.Count - 1 - i : i], queryId, archive, request.From));

        var fin = new Element("fin", ArchiveModule.Namespace).SetAttribute("complete", complete ? "true" : null);
        var rsm = fin.AddChild("set", Rsm);
        if (results.Count > 0)
        {
            // first and last name the page in archive order, flipped or not: flipping changes only the order of sending.
            var first = rsm.AddChild("first").AddText(results[0].Key!);
            // The index (optional) only on forward pages: slixmpp 1.8 ends any paging once index + page size reaches
            // the count, which on a backward page is true of the very first one.
            if (!backwards)
                first.SetAttribute("index", (await store.CountAsync(owner, filter with { BeforeId = results[0].Id })).ToString(System.Globalization.CultureInfo.InvariantCulture));
            rsm.AddChild("last").AddText(results[^1].Key!);
        }
        rsm.AddChild("count").AddText(count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return request.Result(fin);
    }

    /// <summary>The archive's first and last message (#extended metadata); empty for an empty archive.</summary>
    public static async ValueTask<Element> MetadataAsync(IqRequest request, IArchiveStore store, string owner)
    {
        var metadata = new Element("metadata", ArchiveModule.Namespace);
        var first = await store.QueryAsync(owner, new ArchiveQuery { Limit = 1 });
        var last = await store.QueryAsync(owner, new ArchiveQuery { Limit = 1, Newest = true });
        if (first.Count > 0 && last.Count > 0)
        {
            metadata.AddChild("start").SetAttribute("id", first[0].Key).SetAttribute("timestamp", XmppTime.Format(first[0].When));
            metadata.AddChild("end").SetAttribute("id", last[0].Key).SetAttribute("timestamp", XmppTime.Format(last[0].When));
        }
        return request.Result(metadata);
    }

    /// <summary>The stanza-id (XEP-0359) an archive gives a message.</summary>
    public static Element StanzaId(string id, Jid archive) =>
        new Element("stanza-id", ArchiveModule.StanzaIdNamespace).SetAttribute("id", id).SetAttribute("by", archive.ToString());

    private static async ValueTask<(ArchiveQuery Filter, Element? Error)> ReadFormAsync(IqRequest request, IArchiveStore store, string owner)
    {
        var filter = new ArchiveQuery();
        if (request.Payload.GetChild("x", Ns.DataForms) is not { } form) return (filter, null);
        foreach (var field in form.Elements)
        {
            if (field.Name != "field") continue;
            var name = field.GetAttribute("var");
            var values = field.Elements.Where(v => v.Name == "value").Select(v => v.Text).ToList();
            var value = NullIfEmpty(values.FirstOrDefault());
            switch (name)
            {
                case "FORM_TYPE":
                    if (value != ArchiveModule.Namespace) return (filter, request.Error(StanzaError.BadRequest, $"FORM_TYPE must be {ArchiveModule.Namespace}"));
                    break;
                case "with" when value is not null:
                    if (!Jid.TryParse(value, out var with)) return (filter, request.Error(StanzaError.JidMalformed, $"with: '{value}' is not a JID"));
                    // §4.1.1: a bare JID matches every message to and from the contact, a full JID only those
                    // exchanged with that exact resource.
                    filter = filter with { With = with.Bare.ToString(), WithFull = with.IsBare ? null : with.ToString() };
                    break;
                case "start" when value is not null:
                    if (!XmppTime.TryParse(value, out var start)) return (filter, request.Error(StanzaError.BadRequest, "start: not a XEP-0082 DateTime"));
                    filter = filter with { Start = start };
                    break;
                case "end" when value is not null:
                    if (!XmppTime.TryParse(value, out var end)) return (filter, request.Error(StanzaError.BadRequest, "end: not a XEP-0082 DateTime"));
                    filter = filter with { End = end };
                    break;
                case "after-id" when value is not null:
                    if (await RowOfAsync(store, owner, value) is not { } afterRow) return (filter, request.Error(StanzaError.ItemNotFound, $"after-id: no message {value} in the archive"));
                    filter = filter with { AfterId = afterRow };
                    break;
                case "before-id" when value is not null:
                    if (await RowOfAsync(store, owner, value) is not { } beforeRow) return (filter, request.Error(StanzaError.ItemNotFound, $"before-id: no message {value} in the archive"));
                    filter = filter with { BeforeId = beforeRow };
                    break;
                case "ids":
                    var ids = values.Where(v => v.Length > 0).Distinct(StringComparer.Ordinal).ToList();
                    if (ids.Count > MaxPage) return (filter, request.Error(StanzaError.NotAcceptable, $"ids: at most {MaxPage} per query"));
                    var found = await store.CountAsync(owner, new ArchiveQuery { Keys = ids });
                    if (found < ids.Count) return (filter, request.Error(StanzaError.ItemNotFound, "ids: not every message is in the archive"));
                    filter = filter with { Keys = ids };
                    break;
                case "with" or "start" or "end" or "after-id" or "before-id":
                    break;
                default:
                    return (filter, request.Error(StanzaError.FeatureNotImplemented, $"unknown field '{name}'"));
            }
        }
        return (filter, null);
    }

    private static async ValueTask<long?> RowOfAsync(IArchiveStore store, string owner, string key) =>
        (await store.QueryAsync(owner, new ArchiveQuery { Keys = [key], Limit = 1 })) is [var item] ? item.Id : null;

    private static Element Result(ArchiveItem item, string? queryId, Jid archive, Jid to)
    {
        var original = StoredStanza.Parse(item.Value);
        original.Add(StanzaId(item.Key!, archive));
        var message = new Element("message", Ns.Client)
            .SetAttribute("to", to.ToString())
            .SetAttribute("from", archive.ToString())
            .SetAttribute("id", "mam-" + item.Key);
        message.AddChild("result", ArchiveModule.Namespace).SetAttribute("queryid", queryId).SetAttribute("id", item.Key)
            .AddChild("forwarded", Forward)
            .Add(new Element("delay", Ns.Delay).SetAttribute("stamp", XmppTime.Format(item.When)))
            .Add(original);
        return message;
    }

    private static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;
}
