using Candor.Server.Core;
using Microsoft.AspNetCore.Connections;

namespace Candor.Server.Connections;

/// <summary>Kestrel's entry point for the STARTTLS c2s listener (RFC 6120); the returned task is the connection's lifetime.</summary>
internal sealed class StartTlsC2sHandler(XmppServer server, TlsSettings tls) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new C2sConnection(server, connection, tls, directTls: false).RunAsync();
}

/// <summary>Kestrel's entry point for the direct TLS c2s listener (XEP-0368).</summary>
internal sealed class DirectTlsC2sHandler(XmppServer server, TlsSettings tls) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new C2sConnection(server, connection, tls, directTls: true).RunAsync();
}
