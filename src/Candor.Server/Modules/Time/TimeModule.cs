using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Time;

/// <summary>Entity time (XEP-0202), in UTC.</summary>
public sealed class TimeModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } = [new("XEP-0202", "2.0", "server time in UTC")];

    public void Register(XmppServer server)
    {
        server.Disco.ServerFeatures.Add(Ns.Time);
        server.Iq.Register(IqScope.Server, "get", "time", Ns.Time, request =>
        {
            var time = new Element("time", Ns.Time);
            time.AddChild("tzo").AddText("+00:00");
            time.AddChild("utc").AddText(XmppTime.Format(DateTimeOffset.UtcNow));
            return ValueTask.FromResult<Element?>(request.Result(time));
        });
    }
}
