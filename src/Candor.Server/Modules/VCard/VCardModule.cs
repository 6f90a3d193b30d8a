using Candor.Server.Core;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.VCard;

/// <summary>vcard-temp (XEP-0054): each account publishes one vCard; anyone may read it.</summary>
public sealed class VCardModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } = [new("XEP-0054", "1.2", "stored per account; an empty vCard when none")];

    public void Register(XmppServer server)
    {
        var store = server.Storage.OpenKeyValue("vcard");
        server.Disco.ServerFeatures.Add(Ns.VCard);
        server.Iq.Register(IqScope.Account, "get", "vCard", Ns.VCard, async request =>
        {
            var stored = await store.GetAsync(request.To.Local!);
            return request.Result(stored is null ? new Element("vCard", Ns.VCard) : StoredStanza.Parse(stored));
        });
        server.Iq.Register(IqScope.Account, "set", "vCard", Ns.VCard, async request =>
        {
            if (!request.IsSelf) return request.Error(StanzaError.Forbidden, "only the account itself may change its vCard");
            await store.SetAsync(request.To.Local!, ElementWriter.ToXmlString(request.Payload));
            return request.Result();
        });
    }
}
