using System.Net;
using System.Security.Cryptography;
using Candor.Server.Accounts;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Connections;

public enum SaslOutcome { Continue, Success, Failure }

/// <summary>
/// SASL for one stream (RFC 6120 §6): SCRAM-SHA-256 and SCRAM-SHA-1 with their -PLUS variants bound to
/// tls-server-end-point (RFC 5929), and PLAIN inside TLS. Independent of the transport.
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

    public int Failures { get; private set; }
    /// <summary>The prepared localpart, once authenticated.</summary>
    public string? User { get; private set; }
    public string? Mechanism => User is null ? null : _mechanism;

    private bool PlainAllowed => secure || server.Options.AllowPlaintext;
    private bool PlusOffered => channelBinding is not null;

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

    public IEnumerable<Element> Features()
    {
        var mechanisms = new Element("mechanisms", Ns.Sasl);
        foreach (var name in Mechanisms) mechanisms.AddChild("mechanism").AddText(name);
        yield return mechanisms;
        if (PlusOffered)
        {
            // XEP-0440: say which channel-binding type the -PLUS mechanisms use here.
            var bindings = new Element("sasl-channel-binding", Ns.SaslChannelBinding);
            bindings.AddChild("channel-binding").SetAttribute("type", ChannelBindingType);
            yield return bindings;
        }
    }

    /// <summary>Handles &lt;auth/&gt;, &lt;response/&gt; or &lt;abort/&gt; and returns the element to send back.</summary>
    public async ValueTask<(SaslOutcome Outcome, Element Reply)> HandleAsync(Element element)
    {
        try
        {
            return element.Name switch
            {
                "auth" => await AuthAsync(element),
                "response" when _awaitingFinal || _mechanism is not null => await ResponseAsync(element),
                "abort" => Fail(SaslFailure.Aborted, null),
                _ => Fail(SaslFailure.MalformedRequest, "unexpected SASL element"),
            };
        }
        catch (SaslException e)
        {
            return FailAndRecord(e.Failure, e.Message);
        }
    }

    private async ValueTask<(SaslOutcome, Element)> AuthAsync(Element auth)
    {
        Reset();
        var name = auth.GetAttribute("mechanism");
        if (name is null || !Mechanisms.Contains(name))
            return Fail(name == "PLAIN" ? SaslFailure.EncryptionRequired : SaslFailure.InvalidMechanism, null);
        _mechanism = name;
        var text = auth.Text.Trim();
        if (text.Length == 0)
            return (SaslOutcome.Continue, new Element("challenge", Ns.Sasl));
        return await StepAsync(Decode(text));
    }

    private ValueTask<(SaslOutcome, Element)> ResponseAsync(Element response) => StepAsync(Decode(response.Text.Trim()));

    private async ValueTask<(SaslOutcome, Element)> StepAsync(byte[] data)
    {
        if (_mechanism == "PLAIN") return await PlainAsync(data);
        if (!_awaitingFinal) return await ScramFirstAsync(data);
        return await ScramFinalAsync(data);
    }

    private async ValueTask<(SaslOutcome, Element)> PlainAsync(byte[] data)
    {
        if (!SaslPlain.TryParse(data, out var authzid, out var authcid, out var password))
            throw new SaslException(SaslFailure.MalformedRequest, "malformed PLAIN message");
        var user = PrepareUser(authcid);
        CheckAuthzid(authzid, user);
        await WaitForThrottleAsync(user);
        if (user is null || !await server.Accounts.VerifyPasswordAsync(user, password))
            return FailAndRecord(SaslFailure.NotAuthorized, null, user);
        return Succeed(user, null);
    }

    private async ValueTask<(SaslOutcome, Element)> ScramFirstAsync(byte[] data)
    {
        var plus = _mechanism!.EndsWith("-PLUS", StringComparison.Ordinal);
        _algorithm = _mechanism.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? ScramAlgorithm.Sha256 : ScramAlgorithm.Sha1;
        _scram = new ScramServer(_algorithm, plus, PlusOffered && server.Options.RejectChannelBindingDowngrade, plus ? ChannelBindingType : null, plus ? channelBinding : null);
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
        return (SaslOutcome.Continue, new Element("challenge", Ns.Sasl).AddText(Convert.ToBase64String(serverFirst)));
    }

    private async ValueTask<(SaslOutcome, Element)> ScramFinalAsync(byte[] data)
    {
        await WaitForThrottleAsync(_claimedUser);
        if (!_scram!.VerifyClientFinal(data, out var serverFinal) || _pendingUser is null)
            return FailAndRecord(SaslFailure.NotAuthorized, null, _claimedUser);
        return Succeed(_pendingUser, serverFinal);
    }

    private (SaslOutcome, Element) Succeed(string user, byte[]? additionalData)
    {
        User = user;
        throttle.RecordSuccess(address);
        var success = new Element("success", Ns.Sasl);
        if (additionalData is not null) success.AddText(Convert.ToBase64String(additionalData));
        _awaitingFinal = false;
        return (SaslOutcome.Success, success);
    }

    private async ValueTask WaitForThrottleAsync(string? user)
    {
        var delay = throttle.DelayFor(address, user);
        if (delay > TimeSpan.Zero) await Task.Delay(delay);
    }

    private (SaslOutcome, Element) FailAndRecord(SaslFailure failure, string? text, string? user = null)
    {
        if (failure == SaslFailure.NotAuthorized) throttle.RecordFailure(address, user ?? _claimedUser);
        return Fail(failure, text);
    }

    private (SaslOutcome, Element) Fail(SaslFailure failure, string? text)
    {
        Failures++;
        Reset();
        // A failed exchange is over: the next one starts with <auth/> (RFC 6120 §6.4.2), not with a <response/>.
        _mechanism = null;
        var element = new Element("failure", Ns.Sasl);
        element.AddChild(failure.ToElementName());
        if (text is not null) element.AddChild("text").SetAttribute("xml:lang", "en").AddText(text);
        return (SaslOutcome.Failure, element);
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
    }

    private static byte[] Decode(string text)
    {
        if (text == "=") return [];
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
