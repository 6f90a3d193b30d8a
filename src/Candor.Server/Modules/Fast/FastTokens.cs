using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Candor.Server.Storage;

namespace Candor.Server.Modules.Fast;

/// <summary>
/// XEP-0484 tokens, one slot per account and user-agent id, kept in the generic map store (so sealed at rest like
/// every other stored secret). A slot holds the newest token and, until the client has used that one, the one it
/// replaced (§4.3: a client may not have received the new token before its connection dropped).
/// </summary>
public sealed class FastTokens(IStorage storage, TimeSpan lifetime)
{
    public const string Namespace = "urn:xmpp:fast:0";
    private readonly IMapStore _tokens = storage.OpenMap("fast-tokens");

    private sealed record Token(string Mechanism, string Secret, DateTimeOffset Expiry);

    private sealed record Slot(Token Current, Token? Previous, long Count);

    /// <summary>A new token for the client; the one it had stays valid until this one is used.</summary>
    public async Task<(string Secret, DateTimeOffset Expiry)> IssueAsync(string user, string agentId, string mechanism)
    {
        var token = new Token(mechanism, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), DateTimeOffset.UtcNow.Add(lifetime));
        var old = await GetAsync(user, agentId);
        await SaveAsync(user, agentId, new Slot(token, old?.Current, old?.Count ?? 0));
        return (token.Secret, token.Expiry);
    }

    /// <summary>
    /// Checks an HT proof (HMAC(token, "Initiator" || cb-data)) against the client's unexpired tokens for the
    /// mechanism; returns the token's responder message (HMAC(token, "Responder" || cb-data)), or null. A
    /// <paramref name="count"/> must exceed every count used before with this slot (§5, replay protection).
    /// </summary>
    public async Task<byte[]?> VerifyAsync(string user, string agentId, string mechanism, byte[] proof, byte[] channelBinding, long? count, bool invalidate)
    {
        if (await GetAsync(user, agentId) is not { } slot) return null;
        if (count is { } c && c <= slot.Count) return null;
        var now = DateTimeOffset.UtcNow;
        foreach (var token in (Token?[])[slot.Current, slot.Previous])
        {
            if (token is null || token.Mechanism != mechanism || token.Expiry <= now) continue;
            var key = Encoding.UTF8.GetBytes(token.Secret);
            if (!CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(key, (byte[])[.. "Initiator"u8, .. channelBinding]), proof)) continue;
            // Using the newest token retires the one it replaced; invalidate='true' retires the one used.
            var usedCurrent = token == slot.Current;
            var next = usedCurrent
                ? invalidate ? null : slot with { Previous = null, Count = count ?? slot.Count }
                : slot with { Previous = invalidate ? null : slot.Previous, Count = count ?? slot.Count };
            await SaveAsync(user, agentId, next);
            return HMACSHA256.HashData(key, (byte[])[.. "Responder"u8, .. channelBinding]);
        }
        return null;
    }

    /// <summary>Revokes the tokens of one client (by its user-agent id), or of several: those whose user-agent id <paramref name="which"/> selects.</summary>
    public async Task RevokeAsync(string user, Func<string, bool> which)
    {
        foreach (var agentId in (await _tokens.GetAllAsync(user)).Keys)
            if (which(agentId)) await _tokens.SetAsync(user, agentId, null);
    }

    private async Task<Slot?> GetAsync(string user, string agentId) =>
        await _tokens.GetAsync(user, agentId) is { } json ? JsonSerializer.Deserialize<Slot>(json) : null;

    private Task SaveAsync(string user, string agentId, Slot? slot) =>
        _tokens.SetAsync(user, agentId, slot is null ? null : JsonSerializer.Serialize(slot));
}
