using Candor.Server.Core;
using Candor.Xml;

namespace Candor.Server.Modules.ClientState;

/// <summary>
/// Client State Indication (XEP-0352): while a client says it is inactive (a phone in a pocket), what it does not
/// need at once (presence updates, chat states, receipts and markers) waits, superseded presence and chat states
/// coalesced, until something urgent arrives or the client becomes active. The stream code handles
/// &lt;active/&gt; and &lt;inactive/&gt; through <see cref="CsiTransport"/>; this module offers the feature.
/// </summary>
public sealed class ClientStateModule : IModule
{
    public const string Namespace = "urn:xmpp:csi:0";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0352", "1.0.0", "while inactive, presence (latest per contact), chat states (latest per sender), receipts and markers wait; a message with a body, an encrypted message, a call invitation, an IQ or a subscription request flushes them"),
    ];

    public void Register(XmppServer server) =>
        server.StreamFeatures.AfterAuthentication.Add(() => new Element("csi", Namespace));
}
