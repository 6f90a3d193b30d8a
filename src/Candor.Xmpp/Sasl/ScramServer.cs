using System.Globalization;
using System.Security.Cryptography;
using static Candor.Xmpp.Sasl.ScramSyntax;

namespace Candor.Xmpp.Sasl;

/// <summary>
/// The server side of one SCRAM exchange (RFC 5802, RFC 7677): <see cref="ReadClientFirst"/>, then
/// <see cref="CreateServerFirst"/> (or <see cref="CreateServerFirstForUnknownUser"/>), then <see cref="VerifyClientFinal"/>.
/// </summary>
public sealed class ScramServer
{
    readonly ScramAlgorithm _algorithm;
    readonly bool _plus;
    readonly bool _serverOffersPlus;
    readonly string? _channelBindingType;
    readonly byte[]? _channelBindingData;
    readonly string _serverNonce;

    Step _step = Step.ClientFirst;
    string _gs2Header = "";
    string _clientFirstBare = "";
    string _clientNonce = "";
    string _serverFirst = "";
    byte[] _storedKey = [];
    byte[] _serverKey = [];
    bool _unknownUser;

    /// <param name="channelBindingType">The type the server supports on this connection ("tls-server-end-point" or "tls-exporter"), null when not on TLS.</param>
    /// <param name="channelBindingData">The channel binding bytes of that type.</param>
    /// <param name="plus">Whether the client chose the -PLUS mechanism.</param>
    /// <param name="serverOffersPlus">Whether the -PLUS variant was advertised, for the downgrade check of RFC 5802 §6.</param>
    /// <param name="serverNonce">For tests only; random by default.</param>
    public ScramServer(ScramAlgorithm algorithm, bool plus, bool serverOffersPlus, string? channelBindingType, byte[]? channelBindingData,
        string? serverNonce = null)
    {
        if (plus && (channelBindingType is null || channelBindingData is null))
            throw new ArgumentException("A -PLUS mechanism needs channel binding data.", nameof(channelBindingData));
        if (serverNonce is not null && !IsNonce(serverNonce))
            throw new ArgumentException("The nonce must be printable ASCII without ','.", nameof(serverNonce));
        _algorithm = algorithm;
        _plus = plus;
        _serverOffersPlus = serverOffersPlus;
        _channelBindingType = channelBindingType;
        _channelBindingData = channelBindingData;
        _serverNonce = serverNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
    }

    /// <summary>XEP-0474: the downgrade-protection hash to send as 'd' in the server-first message, or null.</summary>
    public string? DowngradeProtection { get; init; }

    enum Step { ClientFirst, ServerFirst, ClientFinal, Done }

    public string MechanismName => _algorithm.MechanismName(_plus);

    /// <summary>The SCRAM username with =2C and =3D decoded, not yet prepared as a localpart.</summary>
    public string Username { get; private set; } = "";

    public string? Authzid { get; private set; }

    public void ReadClientFirst(ReadOnlySpan<byte> clientFirst)
    {
        Expect(Step.ClientFirst);
        _step = Step.Done;
        string message = Decode(clientFirst);
        string[] parts = message.Split(',');
        if (parts.Length < 4)
            throw Malformed("The client-first-message is incomplete.");

        ReadChannelBindingFlag(parts[0]);
        if (parts[1].Length > 0)
            Authzid = SaslName(Value(parts[1], 'a') ?? throw Malformed("Expected an authzid ('a')."));
        if (Value(parts[2], 'm') is not null)
            throw Malformed("Mandatory extensions are not supported.");
        Username = SaslName(Required(parts, 2, 'n'));
        _clientNonce = Nonce(Required(parts, 3, 'r'));
        CheckExtensions(parts, 4);

        int bareStart = parts[0].Length + parts[1].Length + 2;
        _gs2Header = message[..bareStart];
        _clientFirstBare = message[bareStart..];
        _step = Step.ServerFirst;
    }

    public byte[] CreateServerFirst(ScramCredential credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        if (credential.Algorithm != _algorithm)
            throw new ArgumentException("The credential is for another algorithm.", nameof(credential));
        return ServerFirst(credential.Salt, credential.Iterations, credential.StoredKey, credential.ServerKey);
    }

    /// <summary>
    /// Answers as if the user existed, with a salt derived from the secret and the username so that repeated
    /// attempts see the same salt; the exchange then fails in <see cref="VerifyClientFinal"/>.
    /// </summary>
    public byte[] CreateServerFirstForUnknownUser(ReadOnlySpan<byte> serverSecret) =>
        CreateServerFirstForUnknownUser(serverSecret, ScramCredential.DefaultIterations);

    public byte[] CreateServerFirstForUnknownUser(ReadOnlySpan<byte> serverSecret, int iterations)
    {
        byte[] salt = HMACSHA256.HashData(serverSecret, Encode(_algorithm.MechanismName(plus: false) + "\0" + Username))[..ScramCredential.SaltSize];
        int hashSize = _algorithm.HashSize();
        _unknownUser = true;
        return ServerFirst(salt, iterations, RandomNumberGenerator.GetBytes(hashSize), RandomNumberGenerator.GetBytes(hashSize));
    }

    /// <summary>
    /// Checks the client proof. True with the server-final-message ("v=...") on success; false with
    /// "e=invalid-proof" when the password is wrong or the user unknown.
    /// </summary>
    public bool VerifyClientFinal(ReadOnlySpan<byte> clientFinal, out byte[] serverFinal)
    {
        Expect(Step.ClientFinal);
        _step = Step.Done;
        string message = Decode(clientFinal);
        int proofStart = message.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofStart < 0)
            throw Malformed("The client-final-message has no proof.");
        string withoutProof = message[..proofStart];
        byte[] proof = Base64(message[(proofStart + 3)..]);
        if (proof.Length != _algorithm.HashSize())
            throw Malformed("The proof has the wrong length.");

        string[] parts = withoutProof.Split(',');
        byte[] channelBinding = Base64(Required(parts, 0, 'c'));
        string nonce = Required(parts, 1, 'r');
        CheckExtensions(parts, 2);

        if (!CryptographicOperations.FixedTimeEquals(channelBinding, ExpectedChannelBinding()))
            throw new SaslException(SaslFailure.NotAuthorized, "The channel binding does not match.");
        if (nonce != _clientNonce + _serverNonce)
            throw new SaslException(SaslFailure.NotAuthorized, "The nonce does not match.");

        string authMessage = _clientFirstBare + "," + _serverFirst + "," + withoutProof;
        byte[] clientSignature = _algorithm.Hmac(_storedKey, authMessage);
        byte[] clientKey = new byte[proof.Length];
        for (int i = 0; i < clientKey.Length; i++)
            clientKey[i] = (byte)(proof[i] ^ clientSignature[i]);
        bool valid = CryptographicOperations.FixedTimeEquals(_algorithm.Hash(clientKey), _storedKey) && !_unknownUser;

        serverFinal = valid
            ? Encode("v=" + Convert.ToBase64String(_algorithm.Hmac(_serverKey, authMessage)))
            : Encode("e=invalid-proof");
        return valid;
    }

    // RFC 5802 §6: 'n' and 'y' belong to the plain mechanism, 'p' to -PLUS with the type this connection offers.
    void ReadChannelBindingFlag(string flag)
    {
        if (flag == "n" || flag == "y")
        {
            if (_plus)
                throw new SaslException(SaslFailure.NotAuthorized, "A -PLUS mechanism requires channel binding.");
            if (flag == "y" && _serverOffersPlus)
                throw new SaslException(SaslFailure.NotAuthorized, "The client believes channel binding is not offered: downgrade.");
            return;
        }
        string type = Value(flag, 'p') ?? throw Malformed("Unknown channel binding flag.");
        if (!IsChannelBindingName(type))
            throw Malformed("The channel binding type is malformed.");
        // RFC 5802 §7 names these two server-errors; RFC 6120 §6.5 has no condition for them, and not-authorized
        // would tell the client its password is wrong before one was tried: malformed-request, with the name as text.
        if (!_plus)
            throw UnsupportedBinding("channel-binding-not-supported", "channel binding needs a -PLUS mechanism");
        if (type != _channelBindingType)
            throw UnsupportedBinding("unsupported-channel-binding-type", $"this server binds to {_channelBindingType} only (XEP-0440)");
    }

    static SaslException UnsupportedBinding(string serverError, string detail) =>
        new(SaslFailure.MalformedRequest, $"{serverError}: {detail}");

    byte[] ExpectedChannelBinding()
    {
        byte[] header = Encode(_gs2Header);
        return _plus ? [.. header, .. _channelBindingData!] : header;
    }

    byte[] ServerFirst(byte[] salt, int iterations, byte[] storedKey, byte[] serverKey)
    {
        Expect(Step.ServerFirst);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        _storedKey = storedKey;
        _serverKey = serverKey;
        _serverFirst = string.Create(CultureInfo.InvariantCulture,
            $"r={_clientNonce}{_serverNonce},s={Convert.ToBase64String(salt)},i={iterations}");
        if (DowngradeProtection is not null) _serverFirst += $",{ScramDowngradeProtection.Attribute}={DowngradeProtection}";
        _step = Step.ClientFinal;
        return Encode(_serverFirst);
    }

    void Expect(Step step)
    {
        if (_step != step)
            throw new InvalidOperationException($"The SCRAM exchange is not at step {step}.");
    }
}
