using System.Net;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Connections;
using Candor.Server.Hosting;
using Candor.Server.Modules.StreamManagement;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Federation;

/// <summary>Kestrel's entry point for the s2s listener; the returned task is the connection's lifetime.</summary>
internal sealed class S2sConnectionHandler(Core.XmppServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new S2sIncoming(server.S2s!, connection, directTls: false).RunAsync();
}

/// <summary>Kestrel's entry point for the direct TLS s2s listener (XEP-0368).</summary>
internal sealed class DirectTlsS2sConnectionHandler(Core.XmppServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new S2sIncoming(server.S2s!, connection, directTls: true).RunAsync();
}

/// <summary>
/// A stream another server opened to us (RFC 6120): direct TLS (XEP-0368) or STARTTLS (required unless plaintext
/// is allowed), then SASL EXTERNAL (XEP-0178) when the peer's certificate authenticates the domain in its stream
/// header, or XEP-0220 dialback: db:result asks us to check a domain with its authoritative server, db:verify asks
/// us, as the authoritative server, whether a key is ours. With S2sRequireValidCertificates dialback is taken only
/// from a peer whose certificate authenticates the domain. Stanzas are taken only from domains the stream proved,
/// for domains we serve, and go to the same router as c2s stanzas.
/// </summary>
internal sealed partial class S2sIncoming : S2sStream
{
    private readonly ConnectionContext _context;
    private readonly bool _directTls;
    private readonly HashSet<string> _verified = new(StringComparer.Ordinal);
    private readonly IPAddress _remote;
    /// <summary>The domain the peer's stream header names as its own ('from').</summary>
    private string _claimed = "";
    /// <summary>The first domain pair proved (ours, the peer's): the one stream management counts for.</summary>
    private (string Local, string Remote)? _pair;
    private X509Certificate2Collection? _sentIntermediates;

    internal const string Bidi = "urn:xmpp:bidi";
    internal const string BidiFeature = "urn:xmpp:features:bidi";

    public S2sIncoming(S2sService s2s, ConnectionContext context, bool directTls)
        : base(s2s, context.Transport.Input, context.Transport.Output)
    {
        _context = context;
        _directTls = directTls;
        _remote = (context.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
    }

    private bool MustStartTls => Ssl is null && !Server.Options.AllowPlaintext;

    /// <summary>True when the peer's TLS certificate authenticates <paramref name="domain"/>.</summary>
    private bool CertificateAuthenticates(string domain) =>
        Ssl?.RemoteCertificate is X509Certificate2 certificate && domain.Length > 0 && S2s.Trust.Authenticates(certificate, _sentIntermediates, domain);

    private Task StartTlsAsync()
    {
        var options = S2s.ServerTlsOptions(_directTls);
        options.RemoteCertificateValidationCallback = (_, _, chain, _) =>
        {
            // Kept for judging the certificate against the domain the peer claims later: the chain is disposed after the handshake.
            if (chain is { ChainPolicy.ExtraStore.Count: > 0 })
                _sentIntermediates = [.. chain.ChainPolicy.ExtraStore.Select(c => X509CertificateLoader.LoadCertificate(c.RawData))];
            return true;
        };
        var transport = _context.Transport;
        return SwapToTlsAsync(ssl => ssl.AuthenticateAsServerAsync(options, Lifetime.Token), new DuplexPipeStream(transport.Input, transport.Output));
    }

    public Task RunAsync() => RunGuardedAsync(async () =>
    {
        StartWriter();
        // Until a domain is proved, the stream has the c2s authentication deadline.
        using var deadline = new Timer(_ =>
        {
            if (_verified.Count == 0) Close(StreamErrors.ConnectionTimeout, "no domain authenticated in time");
        }, null, TimeSpan.FromSeconds(Server.Options.AuthenticationTimeoutSeconds), Timeout.InfiniteTimeSpan);
        var local = "";
        if (_directTls) await StartTlsAsync();
        while (!IsClosing)
        {
            var (ev, element) = await NextAsync();
            switch (ev)
            {
                case XmlEvent.StreamOpen:
                    local = Open(element!);
                    break;
                case XmlEvent.StreamClose:
                    Close(null);
                    return;
                default:
                    if (local.Length == 0) throw new StreamErrorException(StreamErrors.NotWellFormed, "stream header expected");
                    if (element!.Is("starttls", Ns.Tls))
                    {
                        if (Ssl is not null || S2s.Tls.Certificate is null)
                            throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS is not allowed now");
                        await WriteNowAsync(new Element("proceed", Ns.Tls));
                        await StartTlsAsync();
                        local = "";
                        break;
                    }
                    if (element.Is("auth", Ns.Sasl) && !MustStartTls)
                    {
                        if (await OnAuthAsync(element, local)) local = "";
                        break;
                    }
                    if (MustStartTls) throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS is required first");
                    await OnElementAsync(element);
                    break;
            }
        }
    });

    /// <summary>Checks the peer's header, answers with ours and the features; returns the domain it addressed.</summary>
    private string Open(Element header)
    {
        StreamId = S2sService.NewStreamId();
        var to = header.GetAttribute("to") ?? "";
        var from = header.GetAttribute("from") ?? "";
        _claimed = from;
        WriteHeader(to.Length > 0 ? to : Server.Domain.Domain, from, StreamId);
        if (!header.Is("stream", Ns.Stream))
            throw new StreamErrorException(StreamErrors.InvalidNamespace, "the stream element must be <stream> in " + Ns.Stream);
        if (header.GetAttribute("version") is not { } version || !version.StartsWith("1."))
            throw new StreamErrorException(StreamErrors.UnsupportedVersion, "XMPP 1.0 streams only");
        if (!S2s.Serves(to)) throw new StreamErrorException(StreamErrors.HostUnknown, $"{to} is not served here");
        var features = new Element("features", Ns.Stream);
        if (Ssl is null && S2s.Tls.Certificate is not null)
        {
            var starttls = features.AddChild("starttls", Ns.Tls);
            if (MustStartTls) starttls.AddChild("required");
        }
        // XEP-0178 §3: EXTERNAL is offered only when the certificate authenticates the domain the header claims.
        if (!_verified.Contains(from) && CertificateAuthenticates(from))
            features.AddChild("mechanisms", Ns.Sasl).AddChild("mechanism").AddText("EXTERNAL");
        if (!MustStartTls)
        {
            features.AddChild("dialback", Ns.DialbackFeature).AddChild("errors");
            // XEP-0198 is offered here already (a dialback stream is not restarted), enabled only once a domain is proved.
            features.AddChild("sm", StreamManagementModule.Namespace);
            features.AddChild("bidi", BidiFeature);
        }
        Send(features);
        return to;
    }

    private async ValueTask OnElementAsync(Element element)
    {
        if (element.Namespace == Ns.Dialback)
        {
            if (element.Name == "result") await OnResultAsync(element);
            else if (element.Name == "verify") OnVerify(element);
            else throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element.Name}/> is not a dialback element");
            return;
        }
        if (element.Is("bidi", Bidi))
        {
            // XEP-0288 §2.2: asked before authentication; each domain pair proved from then on is a route both ways.
            Bidirectional = true;
            return;
        }
        if (OnAckElement(element)) return;
        if (element.Namespace == StreamManagementModule.Namespace)
        {
            if (element.Name == "enable") OnEnable(element);
            else if (element.Name == "resume") OnResume(element);
            else throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element.Name}/> is not expected from the initiating server");
            return;
        }
        await ReceiveStanzaAsync(element);
    }

    protected override bool MayComeFrom(string domain) => _verified.Contains(domain);

    /// <summary>A domain pair proved on this stream (ours, the peer's): with XEP-0288 our stanzas for the peer go here.</summary>
    private void Proved(string local, string remote)
    {
        _pair ??= (local, remote);
        if (Bidirectional) S2s.Adopt(local, remote, this);
    }

    /// <summary>
    /// XEP-0198 §3 on s2s: taken once a domain is proved, for the first domain pair proved; resumable (§5) for
    /// SmResumeTimeoutSeconds so that a broken connection loses nothing.
    /// </summary>
    private void OnEnable(Element enable)
    {
        if (_pair is not { } pair || Sm is not null)
        {
            Send(SmFailed("unexpected-request"));
            return;
        }
        var resumable = enable.GetAttribute("resume") is "true" or "1";
        var sm = new S2sStreamManagement(pair.Local, pair.Remote, resumable ? S2sService.NewStreamId() : null, Server.Options.SmMaxQueue);
        Manage(sm, null, _ =>
        {
            var enabled = new Element("enabled", StreamManagementModule.Namespace);
            if (sm.Id is not null)
                enabled.SetAttribute("id", sm.Id).SetAttribute("resume", "true")
                    .SetAttribute("max", Server.Options.SmResumeTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return enabled;
        });
        if (sm.Id is not null) S2s.Keep(sm);
    }

    /// <summary>XEP-0198 §5: the link of the same domain pair, broken earlier, goes on on this stream.</summary>
    private void OnResume(Element resume)
    {
        var sm = _pair is null || Sm is not null ? null : S2s.FindResumable(resume.GetAttribute("previd") ?? "");
        if (sm is null || !_verified.Contains(sm.Remote) || !S2s.Serves(sm.Local)
            || !uint.TryParse(resume.GetAttribute("h"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var h))
        {
            Send(SmFailed("item-not-found"));
            return;
        }
        if (!Manage(sm, h, handled => new Element("resumed", StreamManagementModule.Namespace)
                .SetAttribute("previd", sm.Id).SetAttribute("h", handled.ToString(System.Globalization.CultureInfo.InvariantCulture))))
        {
            Send(SmFailed("undefined-condition"));
            return;
        }
        Log.Resumed(Logger, sm.Remote, _remote, sm.Unacknowledged);
        if (Bidirectional) S2s.Adopt(sm.Local, sm.Remote, this);
    }

    private static Element SmFailed(string condition) =>
        new Element("failed", StreamManagementModule.Namespace).Add(new Element(condition, Ns.Stanzas));

    protected override void OnClosing()
    {
        S2s.Forget(this);
        if (Sm is { } sm) S2s.Park(sm);
    }

    /// <summary>
    /// SASL EXTERNAL for the domain of the stream header (RFC 6120 §6.4, XEP-0178 §3); the authorization identity is
    /// empty ("=") or that domain. True on success: the peer restarts the stream.
    /// </summary>
    private async ValueTask<bool> OnAuthAsync(Element auth, string local)
    {
        string? condition = null;
        var authzid = auth.Text.Trim();
        if (auth.GetAttribute("mechanism") != "EXTERNAL") condition = "invalid-mechanism";
        else if (_verified.Contains(_claimed)) condition = "not-authorized";
        else if (!CertificateAuthenticates(_claimed)) condition = "not-authorized";
        else if (authzid is not ("" or "=") && Decode(authzid) != _claimed) condition = "invalid-authzid";
        if (condition is not null)
        {
            Log.ExternalRefused(Logger, _remote, _claimed, condition);
            Server.Metrics.S2sAuthenticationFailed(ServerMetrics.SaslExternal, incoming: true, condition);
            await WriteNowAsync(new Element("failure", Ns.Sasl).Add(new Element(condition, Ns.Sasl)));
            return false;
        }
        await WriteNowAsync(new Element("success", Ns.Sasl));
        _verified.Add(_claimed);
        Proved(local, _claimed);
        Log.Authenticated(Logger, _claimed, _remote);
        Server.Metrics.S2sAuthenticated(ServerMetrics.SaslExternal, incoming: true);
        RestartStream();
        return true;

        static string? Decode(string base64)
        {
            try
            {
                return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(base64));
            }
            catch (FormatException)
            {
                return null;
            }
        }
    }

    private async ValueTask OnResultAsync(Element result)
    {
        var from = result.GetAttribute("from") ?? "";
        var to = result.GetAttribute("to") ?? "";
        if (!S2s.Serves(to))
            throw new StreamErrorException(StreamErrors.HostUnknown, $"{to} is not served here");
        if (!Jid.TryParse(from, out var fromJid) || !fromJid.IsBare || fromJid.Local is not null || S2s.Serves(from))
            throw new StreamErrorException(StreamErrors.InvalidFrom, $"'{from}' is not a remote domain");
        var answer = new Element("result", Ns.Dialback).SetAttribute("from", to).SetAttribute("to", from);
        if (Server.Options.S2sRequireValidCertificatesInEffect && !CertificateAuthenticates(from))
        {
            Log.Untrusted(Logger, _remote, from);
            Server.Metrics.S2sAuthenticationFailed(ServerMetrics.Dialback, incoming: true, StanzaError.NotAuthorized.Condition);
            answer.SetAttribute("type", "error").Add(new Element("error", Ns.Server).SetAttribute("type", "auth")
                .Add(new Element("not-authorized", Ns.Stanzas))
                .Add(new Element("text", Ns.Stanzas).AddText($"a certificate that authenticates {from} is required here")));
            Send(answer);
            return;
        }
        // XEP-0220 §2.2: ask the authoritative server of 'from' whether the key is one it issued for this stream.
        var valid = await S2s.VerifyAsync(to, from, StreamId, result.Text, Lifetime.Token);
        if (valid is null)
        {
            Server.Metrics.S2sAuthenticationFailed(ServerMetrics.Dialback, incoming: true, StanzaError.RemoteServerNotFound.Condition);
            answer.SetAttribute("type", "error").Add(new Element("error", Ns.Server).SetAttribute("type", "cancel")
                .Add(new Element("remote-server-not-found", Ns.Stanzas)));
            Send(answer);
            return;
        }
        answer.SetAttribute("type", valid.Value ? "valid" : "invalid");
        Send(answer);
        if (valid.Value)
        {
            _verified.Add(from);
            Proved(to, from);
            Log.Verified(Logger, from, _remote);
            Server.Metrics.S2sAuthenticated(ServerMetrics.Dialback, incoming: true);
        }
        else
        {
            Log.WrongKey(Logger, _remote, from);
            Server.Metrics.S2sAuthenticationFailed(ServerMetrics.Dialback, incoming: true, "invalid");
            Close(StreamErrors.NotAuthorized, $"the dialback key for {from} is not valid");
        }
    }

    private void OnVerify(Element verify)
    {
        var from = verify.GetAttribute("from") ?? "";
        var to = verify.GetAttribute("to") ?? "";
        var id = verify.GetAttribute("id") ?? "";
        if (!S2s.Serves(to)) throw new StreamErrorException(StreamErrors.HostUnknown, $"{to} is not served here");
        var valid = S2s.IsOurKey(receiving: from, originating: to, id, verify.Text);
        Send(new Element("verify", Ns.Dialback).SetAttribute("from", to).SetAttribute("to", from).SetAttribute("id", id)
            .SetAttribute("type", valid ? "valid" : "invalid"));
    }

    protected override void AbortTransport() => _context.Abort();
    protected override string Describe() => $"from {_remote}";
    protected override bool Incoming => true;

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: {Domain} authenticated by dialback from {Address}")]
        public static partial void Verified(ILogger logger, string domain, IPAddress address);

        [LoggerMessage(Level = LogLevel.Warning, Message = "s2s: {Address} gave a wrong dialback key for {Domain}")]
        public static partial void WrongKey(ILogger logger, IPAddress address, string domain);

        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: {Domain} authenticated by certificate (SASL EXTERNAL) from {Address}")]
        public static partial void Authenticated(ILogger logger, string domain, IPAddress address);

        [LoggerMessage(Level = LogLevel.Warning, Message = "s2s: {Address} asked SASL EXTERNAL for '{Domain}', refused: {Condition}")]
        public static partial void ExternalRefused(ILogger logger, IPAddress address, string domain, string condition);

        [LoggerMessage(Level = LogLevel.Warning, Message = "s2s: {Address} asked dialback for {Domain} without a certificate that authenticates it (S2sRequireValidCertificates)")]
        public static partial void Untrusted(ILogger logger, IPAddress address, string domain);

        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: {Domain} resumed its stream (XEP-0198) from {Address}; {Unacknowledged} stanzas sent again")]
        public static partial void Resumed(ILogger logger, string domain, IPAddress address, int unacknowledged);
    }
}
