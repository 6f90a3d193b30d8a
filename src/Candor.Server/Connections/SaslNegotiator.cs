using System.Net;
using System.Security.Cryptography;
using Candor.Server.Accounts;
using Candor.Server.Core;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Connections;

public enum SaslOutcome { Continue, Success, Failure }

/// <summary>
/// One step of an exchange, whatever profile frames it: a challenge (<see cref="Data"/>), success (with the
/// mechanism's additional data, if any) or a failure condition with an optional text. <see cref="WrongCredentials"/>
/// marks the one failure that is a failed login (a password or proof that does not verify), as opposed to a
/// mechanism, channel-binding or syntax negotiation that did not work out.
/// </summary>
/// <summary>XEP-0484: an exchange authenticating with a token (&lt;fast/&gt;), with its replay counter and whether to retire the token.</summary>
public readonly record struct FastUse(long? Count, bool Invalidate);

public readonly record struct SaslStep(SaslOutcome Outcome, byte[]? Data = null, SaslFailure Failure = default, string? Text = null, bool WrongCredentials = false);

/// <summary>
/// The SASL mechanisms of one stream: SCRAM-SHA-256 and SCRAM-SHA-1 with their -PLUS variants bound to
/// tls-server-end-point (RFC 5929), and PLAIN inside TLS. Independent of the transport and of the profile that
/// frames the exchange (RFC 6120 §6 or XEP-0388, see <see cref="SaslProfiles"/>): both share one negotiator per
/// stream, so failure counts, throttling and channel-binding checks are the same whichever a client uses.
/// </summary>
public sealed class SaslNegotiator(XmppServer server, AuthThrottle throttle, IPAddress address, bool secure, byte[]? channelBinding)
{
    public const string ChannelBindingType = "tls-server-end-point";
    private ScramServer? _scram;
    private ScramAlgorithm _algorithm;
    private bool _awaitingFinal;
    private string? _mechanism;
    /// <summary>The account a SCRAM exchange claims, and the same only if it exists.</summary>
    private string? _claimedUser;
    private string? _pendingUser;
    /// <summary>The 'from' of the stream header, which a SASL2 authorization identity must match (XEP-0388 §2.3).</summary>
    private string? _streamFrom;
    private FastUse? _fast;
    /// <summary>The HT mechanism the client asked a FAST token for (XEP-0484 &lt;request-token/&gt;), if any.</summary>
    private string? _tokenMechanism;

    public int Failures { get; private set; }
    /// <summary>The prepared localpart, once authenticated.</summary>
    public string? User { get; private set; }
    public string? Mechanism => User is null ? null : _mechanism;
    /// <summary>The mechanism of the latest exchange, if it is one offered ("unsupported" otherwise): what a failure is counted under.</summary>
    public string AttemptedMechanism { get; private set; } = "none";
    /// <summary>An exchange has started and has neither succeeded nor failed yet.</summary>
    public bool InProgress => _mechanism is not null && User is null;
    /// <summary>What the client said of itself in the exchange that is running or succeeded (XEP-0388 only).</summary>
    public UserAgent? UserAgent { get; private set; }

    private bool PlainAllowed => secure || server.Options.AllowPlaintext;
    public bool PlusOffered => channelBinding is not null;

    /// <summary>XEP-0484: the HT mechanisms a token can be requested for and used with; like PLAIN, only inside TLS.</summary>
    public IEnumerable<string> FastMechanisms
    {
        get
        {
            if (server.FastTokens is null || !PlainAllowed) yield break;
            if (PlusOffered) yield return "HT-SHA-256-ENDP";
            yield return "HT-SHA-256-NONE";
        }
    }

    public IEnumerable<string> Mechanisms
    {
        get
        {
            if (PlusOffered)
            {
                yield return "SCRAM-SHA-256-PLUS";
                yield return "SCRAM-SHA-1-PLUS";
            }
            yield return "SCRAM-SHA-256";
            yield return "SCRAM-SHA-1";
            if (PlainAllowed) yield return "PLAIN";
        }
    }

    /// <summary>
    /// Starts an exchange with <paramref name="mechanism"/>. <paramref name="initialResponse"/> is base64, or null
    /// when the client sent none (the server then answers with an empty challenge). With <paramref name="fast"/>,
    /// the mechanism is one of <see cref="FastMechanisms"/> and the client proves a token; <paramref name="tokenRequest"/>
    /// names the HT mechanism of a token to issue on success (both XEP-0484, which binds tokens to the user-agent id).
    /// </summary>
    public async ValueTask<SaslStep> StartAsync(string? mechanism, string? initialResponse, UserAgent? userAgent = null, string? streamFrom = null,
        FastUse? fast = null, string? tokenRequest = null)
    {
        Reset();
        _mechanism = null;
        UserAgent = userAgent;
        _streamFrom = streamFrom;
        AttemptedMechanism = "unsupported";
        if (mechanism is null || !(fast is null ? Mechanisms : FastMechanisms).Contains(mechanism))
            return Fail(mechanism == "PLAIN" ? SaslFailure.EncryptionRequired : SaslFailure.InvalidMechanism, null);
        AttemptedMechanism = mechanism;
        if ((fast is not null || tokenRequest is not null) && userAgent?.Id is null)
            return Fail(SaslFailure.MalformedRequest, "FAST tokens belong to a client: send a user-agent id");
        if (tokenRequest is not null && !FastMechanisms.Contains(tokenRequest))
            return Fail(SaslFailure.MalformedRequest, "no FAST token is offered for that mechanism");
        _mechanism = mechanism;
        _fast = fast;
        _tokenMechanism = tokenRequest;
        if (initialResponse is null) return new SaslStep(SaslOutcome.Continue, []);
        return await GuardAsync(() => StepAsync(Decode(initialResponse)));
    }

    /// <summary>The client's base64 response to the last challenge.</summary>
    public ValueTask<SaslStep> ContinueAsync(string response) =>
        InProgress ? GuardAsync(() => StepAsync(Decode(response))) : ValueTask.FromResult(Refuse(SaslFailure.MalformedRequest, "no exchange to continue"));

    /// <summary>The client gave up (RFC 6120 §6.4.4, XEP-0388 §3.5).</summary>
    public SaslStep Abort() => Fail(SaslFailure.Aborted, null);

    /// <summary>Ends the exchange with a failure the profile found (a malformed element).</summary>
    public SaslStep Refuse(SaslFailure failure, string? text) => Fail(failure, text);

    private async ValueTask<SaslStep> GuardAsync(Func<ValueTask<SaslStep>> step)
    {
        try
        {
            return await step();
        }
        catch (SaslException e)
        {
            // Syntax, channel binding, nonce: thrown before any proof is checked, so no password was tried.
            return Fail(e.Failure, e.Message);
        }
        catch (System.Data.Common.DbException e) when (e.IsTransient)
        {
            // The database did not answer in time (a login storm): the client may try again (RFC 6120 §6.5.12).
            return Fail(SaslFailure.TemporaryAuthFailure, "the server's storage is busy; try again later");
        }
    }

    private async ValueTask<SaslStep> StepAsync(byte[] data)
    {
        if (_mechanism == "PLAIN") return await PlainAsync(data);
        if (_fast is { } fast) return await HashedTokenAsync(data, fast);
        if (!_awaitingFinal) return await ScramFirstAsync(data);
        return await ScramFinalAsync(data);
    }

    private async ValueTask<SaslStep> PlainAsync(byte[] data)
    {
        if (!SaslPlain.TryParse(data, out var authzid, out var authcid, out var password))
            throw new SaslException(SaslFailure.MalformedRequest, "malformed PLAIN message");
        var user = PrepareUser(authcid);
        CheckAuthzid(authzid, user);
        await WaitForThrottleAsync(user);
        if (user is null || !await server.Accounts.VerifyPasswordAsync(user, password))
            return WrongCredentials(user);
        return Succeed(user, null);
    }

    /// <summary>
    /// The HT mechanism (draft-schmaus-kitten-sasl-ht, as XEP-0484 uses it): authcid NUL HMAC(token, "Initiator" ||
    /// cb-data) in, HMAC(token, "Responder" || cb-data) out as the additional data, in one round trip.
    /// </summary>
    private async ValueTask<SaslStep> HashedTokenAsync(byte[] data, FastUse fast)
    {
        var nul = Array.IndexOf(data, (byte)0);
        if (nul <= 0) throw new SaslException(SaslFailure.MalformedRequest, "malformed HT message");
        var user = PrepareUser(System.Text.Encoding.UTF8.GetString(data, 0, nul));
        await WaitForThrottleAsync(user);
        var binding = _mechanism!.EndsWith("-ENDP", StringComparison.Ordinal) ? channelBinding! : [];
        var responder = user is null ? null
            : await server.FastTokens!.VerifyAsync(user, UserAgent!.Id!, _mechanism, data[(nul + 1)..], binding, fast.Count, fast.Invalidate);
        return responder is null ? WrongCredentials(user) : Succeed(user!, responder);
    }

    /// <summary>After success: the FAST token the client asked for, or null when it asked for none.</summary>
    public async Task<(string Secret, DateTimeOffset Expiry)?> IssueRequestedTokenAsync() =>
        _tokenMechanism is null || User is null ? null : await server.FastTokens!.IssueAsync(User, UserAgent!.Id!, _tokenMechanism);

    private async ValueTask<SaslStep> ScramFirstAsync(byte[] data)
    {
        var plus = _mechanism!.EndsWith("-PLUS", StringComparison.Ordinal);
        _algorithm = _mechanism.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? ScramAlgorithm.Sha256 : ScramAlgorithm.Sha1;
        _scram = new ScramServer(_algorithm, plus, PlusOffered && server.Options.RejectChannelBindingDowngrade, plus ? ChannelBindingType : null, plus ? channelBinding : null)
        {
            DowngradeProtection = ScramDowngradeProtection.Hash(_algorithm, Mechanisms, PlusOffered ? [ChannelBindingType] : null),
        };
        _scram.ReadClientFirst(data);
        var user = PrepareUser(_scram.Username);
        CheckAuthzid(_scram.Authzid, user);
        var credential = user is null ? null : await server.Accounts.GetCredentialAsync(user, _algorithm);
        var serverFirst = credential is null
            ? _scram.CreateServerFirstForUnknownUser(UnknownUserSecret)
            : _scram.CreateServerFirst(credential);
        _awaitingFinal = true;
        User = null;
        _pendingUser = credential is null ? null : user;
        _claimedUser = user;
        return new SaslStep(SaslOutcome.Continue, serverFirst);
    }

    private async ValueTask<SaslStep> ScramFinalAsync(byte[] data)
    {
        await WaitForThrottleAsync(_claimedUser);
        if (!_scram!.VerifyClientFinal(data, out var serverFinal) || _pendingUser is null)
            return WrongCredentials(_claimedUser);
        return Succeed(_pendingUser, serverFinal);
    }

    private SaslStep Succeed(string user, byte[]? additionalData)
    {
        User = user;
        throttle.RecordSuccess(address);
        _awaitingFinal = false;
        return new SaslStep(SaslOutcome.Success, additionalData);
    }

    private async ValueTask WaitForThrottleAsync(string? user)
    {
        var delay = throttle.DelayFor(address, user);
        if (delay > TimeSpan.Zero) await Task.Delay(delay);
    }

    /// <summary>A failed login: the only failure that counts toward <see cref="AuthThrottle"/>.</summary>
    private SaslStep WrongCredentials(string? user)
    {
        throttle.RecordFailure(address, user);
        return Fail(SaslFailure.NotAuthorized, null) with { WrongCredentials = true };
    }

    private SaslStep Fail(SaslFailure failure, string? text)
    {
        Failures++;
        Reset();
        // A failed exchange is over: the next one starts with <auth/> (RFC 6120 §6.4.2), not with a <response/>.
        _mechanism = null;
        UserAgent = null;
        _fast = null;
        _tokenMechanism = null;
        return new SaslStep(SaslOutcome.Failure, null, failure, text);
    }

    private void Reset()
    {
        _scram = null;
        _awaitingFinal = false;
        _pendingUser = null;
        _claimedUser = null;
    }

    private string? PrepareUser(string username)
    {
        // The SCRAM/PLAIN username is the localpart of the account (RFC 6120 §6.3.8), prepared like one.
        try
        {
            var jid = Jid.Create(username, server.Domain.Domain);
            return jid.Local;
        }
        catch (JidFormatException)
        {
            return null;
        }
    }

    private void CheckAuthzid(string? authzid, string? user)
    {
        if (string.IsNullOrEmpty(authzid)) return;
        if (!Jid.TryParse(authzid, out var jid) || !jid.IsBare || jid.Local != user || jid.Domain != server.Domain.Domain)
            throw new SaslException(SaslFailure.InvalidAuthzid, "authorization identity must be the account's own bare JID");
        // XEP-0388 §2.3: a non-empty authorization identity must match the stream's 'from', when there is one.
        if (_streamFrom is not null && (!Jid.TryParse(_streamFrom, out var from) || from != jid))
            throw new SaslException(SaslFailure.InvalidAuthzid, "authorization identity does not match the stream's 'from'");
    }

    private static byte[] Decode(string text)
    {
        text = text.Trim();
        if (text is "" or "=") return [];
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            throw new SaslException(SaslFailure.IncorrectEncoding, "invalid base64");
        }
    }

    private static readonly byte[] UnknownUserSecret = RandomNumberGenerator.GetBytes(32);
}
