using System.Text.Json;
using System.Text.Json.Serialization;
using Candor.Server.Storage;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Accounts;

/// <summary>
/// Accounts of the local domain. Only SCRAM salted credentials are stored (one set per SCRAM hash), never the
/// password or a fast hash of it. Keyed by the prepared localpart.
/// </summary>
public sealed class AccountStore(IStorage storage, int iterations)
{
    private readonly IKeyValueStore _accounts = storage.OpenKeyValue("accounts");

    public int Iterations { get; } = iterations;
    public IStorage Storage => storage;

    public async Task<bool> ExistsAsync(string user) => await _accounts.GetAsync(user) is not null;

    public async Task<IReadOnlyList<string>> ListAsync() => await _accounts.ListUsersAsync();

    /// <summary>Creates the account; false when it exists already.</summary>
    public async Task<bool> CreateAsync(string user, string password)
    {
        if (await ExistsAsync(user)) return false;
        await _accounts.SetAsync(user, Serialize(NewRecord(password, DateTimeOffset.UtcNow)));
        return true;
    }

    /// <summary>
    /// Creates many accounts (a bulk import): the credentials are derived on every core, with the same iterations as
    /// <see cref="CreateAsync"/>, and stored in one transaction. Returns the accounts created; the others existed.
    /// </summary>
    public async Task<IReadOnlyList<string>> CreateManyAsync(IReadOnlyList<(string User, string Password)> accounts)
    {
        var records = new KeyValuePair<string, string>[accounts.Count];
        var now = DateTimeOffset.UtcNow;
        Parallel.For(0, accounts.Count, i => records[i] = new(accounts[i].User, Serialize(NewRecord(accounts[i].Password, now))));
        return await _accounts.AddManyAsync(records);
    }

    /// <summary>Replaces the credentials; false when there is no such account.</summary>
    public async Task<bool> SetPasswordAsync(string user, string password)
    {
        var existing = await GetRecordAsync(user);
        if (existing is null) return false;
        await _accounts.SetAsync(user, Serialize(NewRecord(password, existing.Created)));
        return true;
    }

    /// <summary>Removes the account and everything stored for it; false when there is no such account.</summary>
    public async Task<bool> RemoveAsync(string user)
    {
        if (!await ExistsAsync(user)) return false;
        await storage.DeleteUserAsync(user);
        return true;
    }

    public async Task<ScramCredential?> GetCredentialAsync(string user, ScramAlgorithm algorithm)
    {
        var record = await GetRecordAsync(user);
        var stored = record is null ? null : algorithm == ScramAlgorithm.Sha1 ? record.Sha1 : record.Sha256;
        return stored?.ToCredential(algorithm);
    }

    /// <summary>
    /// Checks a plain password (SASL PLAIN) by deriving the SCRAM-SHA-256 StoredKey from it, or the SCRAM-SHA-1 one for an
    /// account imported with SHA-1 credentials only (Prosody's); a match there also stores the missing SHA-256 credential.
    /// </summary>
    public async Task<bool> VerifyPasswordAsync(string user, string password)
    {
        var record = await GetRecordAsync(user);
        if (record?.Sha256 is { } sha256) return sha256.ToCredential(ScramAlgorithm.Sha256).Verify(password);
        if (record?.Sha1 is not { } sha1 || !sha1.ToCredential(ScramAlgorithm.Sha1).Verify(password)) return false;
        await _accounts.SetAsync(user, Serialize(record with { Sha256 = StoredCredential.From(ScramCredential.Create(ScramAlgorithm.Sha256, password, Iterations)) }));
        return true;
    }

    /// <summary>Creates an account from credentials made elsewhere (XEP-0227 import); false when it exists already.</summary>
    public async Task<bool> ImportAsync(string user, ScramCredential? sha1, ScramCredential? sha256)
    {
        if (await ExistsAsync(user)) return false;
        await _accounts.SetAsync(user, Serialize(new AccountRecord(DateTimeOffset.UtcNow,
            sha1 is null ? null : StoredCredential.From(sha1), sha256 is null ? null : StoredCredential.From(sha256))));
        return true;
    }

    private AccountRecord NewRecord(string password, DateTimeOffset created) => new(
        created,
        StoredCredential.From(ScramCredential.Create(ScramAlgorithm.Sha1, password, Iterations)),
        StoredCredential.From(ScramCredential.Create(ScramAlgorithm.Sha256, password, Iterations)));

    private async Task<AccountRecord?> GetRecordAsync(string user)
    {
        var json = await _accounts.GetAsync(user);
        return json is null ? null : JsonSerializer.Deserialize(json, AccountJson.Default.AccountRecord);
    }

    private static string Serialize(AccountRecord record) => JsonSerializer.Serialize(record, AccountJson.Default.AccountRecord);
}

/// <summary>An account's credentials; an imported account may lack one of them until its password is seen (PLAIN).</summary>
internal sealed record AccountRecord(DateTimeOffset Created, StoredCredential? Sha1, StoredCredential? Sha256);

internal sealed record StoredCredential(byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    public static StoredCredential From(ScramCredential c) => new(c.Salt, c.Iterations, c.StoredKey, c.ServerKey);
    public ScramCredential ToCredential(ScramAlgorithm algorithm) => new(algorithm, Salt, Iterations, StoredKey, ServerKey);
}

[JsonSerializable(typeof(AccountRecord))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class AccountJson : JsonSerializerContext;
