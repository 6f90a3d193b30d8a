using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Candor.Server.Core;
using Candor.Server.Storage;

namespace Candor.Server.Modules.Clients;

/// <summary>
/// Every client that has accessed an account (map store "clients": user → client id → record), so that
/// new ones can be announced and any of them listed and revoked. It holds IP addresses, so records unused
/// for longer than the configured retention are deleted.
/// </summary>
public sealed class ClientRegistry(IStorage storage)
{
    private readonly IMapStore _clients = storage.OpenMap("clients");

    /// <summary>
    /// A client is identified by its XEP-0388 user-agent id when it authenticated with one, and otherwise by what
    /// the server can observe of it: its resource and its address. The id is a digest, never the address nor the
    /// client's own id: a user-agent id is hashed with the account, so the same id on two accounts gives two
    /// unrelated client ids.
    /// </summary>
    public static string IdentifyClient(string user, UserAgent? agent, string resource, string address) =>
        agent?.Id is { } id ? Digest("user-agent\n" + user + "\n" + id) : Digest(resource + "\n" + address);

    private static string Digest(string text)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        return Convert.ToBase64String(digest, 0, 12).Replace('+', '-').Replace('/', '_');
    }

    public async Task<ClientRecord?> GetAsync(string user, string clientId)
    {
        var json = await _clients.GetAsync(user, clientId);
        return json is null ? null : JsonSerializer.Deserialize(json, ClientJson.Default.ClientRecord);
    }

    public async Task<IReadOnlyList<ClientRecord>> ListAsync(string user)
    {
        var all = await _clients.GetAllAsync(user);
        return [.. all.Values.Select(v => JsonSerializer.Deserialize(v, ClientJson.Default.ClientRecord)!).OrderBy(c => c.FirstSeen)];
    }

    public Task SaveAsync(string user, ClientRecord record) =>
        _clients.SetAsync(user, record.Id, JsonSerializer.Serialize(record, ClientJson.Default.ClientRecord));

    public Task RemoveAsync(string user, string clientId) => _clients.SetAsync(user, clientId, null);

    /// <summary>Deletes records last used before <paramref name="cutoff"/>, for every account.</summary>
    public async Task<int> PruneAsync(IEnumerable<string> users, DateTimeOffset cutoff)
    {
        var removed = 0;
        foreach (var user in users)
            foreach (var client in await ListAsync(user))
                if (client.LastSeen < cutoff && client.Sessions == 0)
                {
                    await RemoveAsync(user, client.Id);
                    removed++;
                }
        return removed;
    }
}

public sealed class ClientRecord
{
    public required string Id { get; init; }
    public required string Resource { get; set; }
    /// <summary>The client software: the XEP-0388 user agent's, or else its caps' client identity name or caps node (XEP-0115).</summary>
    public string? Software { get; set; }
    /// <summary>The device name from the XEP-0388 user agent.</summary>
    public string? Device { get; set; }
    /// <summary>Identified by a XEP-0388 user-agent id (rather than by resource and address).</summary>
    public bool ByUserAgent { get; init; }
    public required DateTimeOffset FirstSeen { get; init; }
    public required DateTimeOffset LastSeen { get; set; }
    public required string LastAddress { get; set; }
    public required string Mechanism { get; set; }
    public string? Tls { get; set; }
    /// <summary>Sessions of this client bound now (kept in the store so that <c>candor user sessions</c> sees it).</summary>
    public int Sessions { get; set; }
}

[JsonSerializable(typeof(ClientRecord))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class ClientJson : JsonSerializerContext;
