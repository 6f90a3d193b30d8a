using Candor.Server.Core;

namespace Candor.Server.Modules.Fast;

/// <summary>
/// XEP-0484 FAST: a client that authenticated over SASL2 may ask for a token and later log in with it in one round
/// trip, without a password hash (the HT mechanisms, exchanged by <see cref="Connections.SaslNegotiator"/>). A
/// password change revokes the account's tokens; so do XEP-0494 revocation and "End other sessions" (ClientsModule).
/// </summary>
public sealed class FastModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
        [new("XEP-0484", "0.2.0", "inside SASL2: HT-SHA-256-NONE, and HT-SHA-256-ENDP over TLS; tokens revocable")];

    public void Register(XmppServer server)
    {
        var tokens = new FastTokens(server.Storage, TimeSpan.FromSeconds(server.Options.FastTokenLifetimeSeconds));
        server.FastTokens = tokens;
        server.Hooks.PasswordChanged.Add(async change =>
        {
            await tokens.RevokeAsync(change.User, _ => true);
            return false;
        });
    }
}
