using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Version;

/// <summary>Software version (XEP-0092). The operating system is left out: it helps attackers more than users.</summary>
public sealed class VersionModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } = [new("XEP-0092", "1.1", "name and version; no OS")];

    public void Register(XmppServer server)
    {
        server.Disco.ServerFeatures.Add(Ns.Version);
        server.Iq.Register(IqScope.Server, "get", "query", Ns.Version, request =>
        {
            var query = new Element("query", Ns.Version);
            query.AddChild("name").AddText("Candor");
            query.AddChild("version").AddText(server.Version);
            return ValueTask.FromResult<Element?>(request.Result(query));
        });
    }
}
