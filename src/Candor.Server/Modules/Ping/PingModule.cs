using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Ping;

/// <summary>XMPP Ping (XEP-0199): the server answers pings to itself and, on their behalf, to accounts.</summary>
public sealed class PingModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } = [new("XEP-0199", "2.0.1", "server answers pings")];

    public void Register(XmppServer server)
    {
        server.Disco.ServerFeatures.Add(Ns.Ping);
        server.Iq.Register(IqScope.Server, "get", "ping", Ns.Ping, Pong);
        server.Iq.Register(IqScope.Account, "get", "ping", Ns.Ping, Pong);
    }

    private static ValueTask<Element?> Pong(IqRequest request) => ValueTask.FromResult<Element?>(request.Result());
}
