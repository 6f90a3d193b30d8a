using System.Security.Cryptography;
using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

/// <summary>
/// XEP-0398: one avatar whichever way it is set. An avatar published on PEP (XEP-0084 metadata naming a data
/// item) becomes the PHOTO of the account's vCard (XEP-0054, the store the vCard module keeps); a vCard set with
/// a PHOTO is published as XEP-0084 data and metadata, so PEP clients see it too; presence carries the avatar's
/// XEP-0153 hash.
/// </summary>
public sealed class AvatarConversion(XmppServer server, PepService pep, PepRequests requests)
{
    public const string Feature = "urn:xmpp:pep-vcard-conversion:0";
    public const string Data = "urn:xmpp:avatar:data";
    public const string Metadata = "urn:xmpp:avatar:metadata";
    public const string VCardUpdate = "vcard-temp:x:update";

    private readonly IKeyValueStore _vcards = server.Storage.OpenKeyValue("vcard");

    /// <summary>After a publish to the metadata node: the avatar it names becomes the vCard's PHOTO (none for empty metadata).</summary>
    public async ValueTask OnPublishedAsync(string user, string node)
    {
        if (node != Metadata) return;
        var account = await pep.GetAsync(user);
        if (account.Find(Metadata)?.Last?.Payload is not { } metadata) return;
        var info = metadata.GetChild("info", Metadata);
        var stored = await _vcards.GetAsync(user);
        var vcard = stored is null ? new Element("vCard", Ns.VCard) : StoredStanza.Parse(stored);
        var photo = vcard.GetChild("PHOTO", Ns.VCard);
        if (info is null)
        {
            if (photo is null) return;
            vcard.RemoveChild(photo);
        }
        else
        {
            var data = account.Find(Data)?.Items.FirstOrDefault(i => i.Id == info.GetAttribute("id"))?.Payload.Text;
            if (data is null || photo?.GetChildText("BINVAL", Ns.VCard)?.Trim() == data.Trim()) return;
            if (photo is not null) vcard.RemoveChild(photo);
            photo = vcard.AddChild("PHOTO");
            photo.AddChild("TYPE").AddText(info.GetAttribute("type") ?? "image/png");
            photo.AddChild("BINVAL").AddText(data);
        }
        await _vcards.SetAsync(user, ElementWriter.ToXmlString(vcard));
    }

    /// <summary>Before routing (PreIq): a vCard set by the account itself with a PHOTO is published on PEP as well.</summary>
    public async ValueTask<bool> OnIqAsync(StanzaEvent ev)
    {
        if (ev.Type != "set" || ev.Origin is not { } origin || ev.To != origin.BareJid
            || ev.Stanza.FirstElement is not { } vcard || !vcard.Is("vCard", Ns.VCard)
            || vcard.GetChild("PHOTO", Ns.VCard)?.GetChildText("BINVAL", Ns.VCard) is not { } binval)
            return false;
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(string.Concat(binval.Where(c => !char.IsWhiteSpace(c))));
        }
        catch (FormatException)
        {
            return false;
        }
        var id = Convert.ToHexStringLower(SHA1.HashData(bytes));
        if ((await pep.GetAsync(origin.User)).Find(Metadata)?.Last?.Id == id) return false;
        var type = vcard.GetChild("PHOTO", Ns.VCard)!.GetChildText("TYPE", Ns.VCard) ?? "image/png";
        var data = new Element("data", Data).AddText(Convert.ToBase64String(bytes));
        var metadata = new Element("metadata", Metadata);
        metadata.AddChild("info").SetAttribute("id", id).SetAttribute("type", type).SetAttribute("bytes", bytes.Length.ToString());
        await PublishAsync(ev, Data, id, data);
        await PublishAsync(ev, Metadata, id, metadata);
        return false;
    }

    /// <summary>
    /// XEP-0398 §4 (XEP-0153): a presence the account broadcasts without a vcard-temp:x:update element gets one
    /// with the SHA-1 of its current avatar (the XEP-0084 metadata id), so vCard-avatar clients and rooms see it.
    /// Read from the account's nodes in memory: the account is online, it is sending presence.
    /// </summary>
    public async ValueTask AddPhotoHashAsync(Session session, Element presence)
    {
        if (presence.GetChild("x", VCardUpdate) is not null) return;
        var info = (await pep.GetAsync(session.User)).Find(Metadata)?.Last?.Payload.GetChild("info", Metadata);
        if (info?.GetAttribute("id") is not { } hash) return;
        presence.Add(new Element("x", VCardUpdate).Add(new Element("photo", VCardUpdate).AddText(hash)));
    }

    /// <summary>Publishes as the account itself would, through the same request handling (checks, limits, notifications).</summary>
    private async ValueTask PublishAsync(StanzaEvent ev, string node, string id, Element payload)
    {
        var pubsub = new Element("pubsub", PubSubNs.PubSub);
        pubsub.AddChild("publish").SetAttribute("node", node).AddChild("item").SetAttribute("id", id).Add(payload);
        var iq = Stanza.CreateIq("set", "avatar-" + id, ev.From, ev.To).Add(pubsub);
        await requests.PubSubSetAsync(new IqRequest(new StanzaEvent(server, ev.Origin, iq, ev.From, ev.To), pubsub));
    }
}
