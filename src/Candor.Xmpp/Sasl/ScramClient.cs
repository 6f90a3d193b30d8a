using System.Globalization;
using System.Security.Cryptography;
using static Candor.Xmpp.Sasl.ScramSyntax;

namespace Candor.Xmpp.Sasl;

/// <summary>
/// The client side of one SCRAM exchange (RFC 5802, RFC 7677). With channel binding data the client uses the
/// -PLUS mechanism when the server offers it, and otherwise sends 'y' so the server can detect a downgrade.
/// </summary>
public sealed class ScramClient
{
    readonly ScramAlgorithm _algorithm;
    readonly string _password;
    readonly byte[]? _channelBindingData;
    readonly string _gs2Header;
    readonly string _clientNonce;
    readonly string _clientFirstBare;
    byte[]? _serverSignature;

    /// <param name="clientNonce">For tests only; random by default.</param>
    public ScramClient(ScramAlgorithm algorithm, string username, string password, string? channelBindingType = null,
        byte[]? channelBindingData = null, bool serverSupportsPlus = false, string? clientNonce = null, string? authzid = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(username);
        ArgumentException.ThrowIfNullOrEmpty(password);
        if (channelBindingType is not null && (!IsChannelBindingName(channelBindingType) || channelBindingData is null))
            throw new ArgumentException("A channel binding type needs a valid name and data.", nameof(channelBindingType));
        if (clientNonce is not null && !IsNonce(clientNonce))
            throw new ArgumentException("The nonce must be printable ASCII without ','.", nameof(clientNonce));

        _algorithm = algorithm;
        _password = password;
        Plus = channelBindingType is not null && serverSupportsPlus;
        _channelBindingData = Plus ? channelBindingData : null;
        string flag = channelBindingType is null ? "n" : Plus ? "p=" + channelBindingType : "y";
        _gs2Header = flag + "," + (authzid is null ? "" : "a=" + EscapeSaslName(authzid)) + ",";
        _clientNonce = clientNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        _clientFirstBare = "n=" + EscapeSaslName(username) + ",r=" + _clientNonce;
    }

    /// <summary>
    /// XEP-0474: the downgrade-protection hash of the mechanisms and channel-binding types this client saw
    /// (<see cref="ScramDowngradeProtection.Hash"/>). When the server sends another, the exchange is aborted.
    /// </summary>
    public string? DowngradeProtection { get; init; }

    /// <summary>Whether this exchange uses channel binding, and so the -PLUS mechanism.</summary>
    public bool Plus { get; }

    public string MechanismName => _algorithm.MechanismName(Plus);

    /// <summary>The iteration count the server asked for; valid after <see cref="CreateClientFinal"/>.</summary>
    public int Iterations { get; private set; }

    public byte[] CreateClientFirst() => Encode(_gs2Header + _clientFirstBare);

    public byte[] CreateClientFinal(ReadOnlySpan<byte> serverFirst)
    {
        string message = Decode(serverFirst);
        if (Value(message, 'e') is { } error)
            throw new SaslException(SaslFailure.NotAuthorized, "The server failed the exchange: " + error);
        string[] parts = message.Split(',');
        if (Value(parts[0], 'm') is not null)
            throw Malformed("Mandatory extensions are not supported.");
        string nonce = Nonce(Required(parts, 0, 'r'));
        byte[] salt = Base64(Required(parts, 1, 's'));
        string iterations = Required(parts, 2, 'i');
        CheckExtensions(parts, 3);
        if (DowngradeProtection is not null && parts.Skip(3).Select(p => Value(p, ScramDowngradeProtection.Attribute)).FirstOrDefault(v => v is not null) is { } advertised
            && !CryptographicOperations.FixedTimeEquals(Encode(advertised), Encode(DowngradeProtection)))
            throw new SaslException(SaslFailure.NotAuthorized, "Downgrade detected: the server advertised other mechanisms or channel-binding types than this client saw (XEP-0474).");

        if (nonce.Length <= _clientNonce.Length || !nonce.StartsWith(_clientNonce, StringComparison.Ordinal))
            throw new SaslException(SaslFailure.NotAuthorized, "The server nonce does not extend the client nonce.");
        if (salt.Length == 0)
            throw Malformed("The salt is empty.");
        if (!int.TryParse(iterations, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count < 1)
            throw Malformed("The iteration count is not a positive number.");
        Iterations = count;

        byte[] header = Encode(_gs2Header);
        byte[] channelBinding = _channelBindingData is null ? header : [.. header, .. _channelBindingData];
        string withoutProof = "c=" + Convert.ToBase64String(channelBinding) + ",r=" + nonce;
        string authMessage = _clientFirstBare + "," + message + "," + withoutProof;

        byte[] saltedPassword = _algorithm.SaltedPassword(_password, salt, count);
        byte[] clientKey = _algorithm.Hmac(saltedPassword, "Client Key");
        byte[] clientSignature = _algorithm.Hmac(_algorithm.Hash(clientKey), authMessage);
        byte[] proof = new byte[clientKey.Length];
        for (int i = 0; i < proof.Length; i++)
            proof[i] = (byte)(clientKey[i] ^ clientSignature[i]);
        _serverSignature = _algorithm.Hmac(_algorithm.Hmac(saltedPassword, "Server Key"), authMessage);

        return Encode(withoutProof + ",p=" + Convert.ToBase64String(proof));
    }

    /// <summary>True only for a "v=" with the expected server signature.</summary>
    public bool VerifyServerFinal(ReadOnlySpan<byte> serverFinal)
    {
        if (_serverSignature is null)
            throw new InvalidOperationException("CreateClientFinal has not run.");
        try
        {
            string verifier = Value(Decode(serverFinal).Split(',')[0], 'v') ?? "";
            return CryptographicOperations.FixedTimeEquals(Base64(verifier), _serverSignature);
        }
        catch (SaslException)
        {
            return false;
        }
    }
}
