using System.Globalization;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Connections;
using Candor.Server.Hosting;
using Candor.Server.Modules.StreamManagement;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Federation;

/// <summary>
/// A stream we open to another server (RFC 6120): direct TLS (XEP-0368) or STARTTLS (required unless plaintext is
/// allowed), the peer's certificate checked against the remote domain (<see cref="S2sTrust"/>) when
/// S2sRequireValidCertificates, then our domain proved by SASL EXTERNAL or dialback (db:result) or, on a
/// verification connection, one db:verify asked on behalf of an incoming stream (XEP-0220 §2.3).
/// </summary>
internal sealed partial class S2sOutgoing : S2sStream
{
    private readonly TcpClient _tcp;
    private readonly string _local;
    private readonly string _remote;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private S2sOutgoing(S2sService s2s, TcpClient tcp, NetworkStream stream, string local, string remote)
        : base(s2s, PipeReader.Create(stream), PipeWriter.Create(stream))
    {
        _tcp = tcp;
        _local = local;
        _remote = remote;
    }

    /// <summary>Runs until the stream ends (the route forgets it then).</summary>
    public Task Completion => _done.Task;

    /// <summary>Connects to the first endpoint of <paramref name="remote"/> that answers and negotiates TLS.</summary>
    public static async Task<S2sOutgoing> ConnectAsync(S2sService s2s, string local, string remote, CancellationToken cancellation)
    {
        Exception? last = null;
        foreach (var (host, port, directTls) in await s2s.ResolveAsync(remote, cancellation))
        {
            var tcp = new TcpClient { NoDelay = true };
            S2sOutgoing? stream = null;
            try
            {
                await tcp.ConnectAsync(host, port, cancellation);
                stream = new S2sOutgoing(s2s, tcp, tcp.GetStream(), local, remote);
                await stream.NegotiateAsync(directTls, cancellation);
                return stream;
            }
            catch (Exception e) when (e is SocketException or IOException or System.Security.Authentication.AuthenticationException
                                           or StreamErrorException or XmlStreamException)
            {
                if (e is StreamErrorException error && stream is not null) await stream.EndNowAsync(error.Condition, error.Message);
                tcp.Dispose();
                last = e;
            }
        }
        throw new S2sUnreachableException(last?.Message ?? $"no address found for {remote}");
    }

    private Element _features = null!;
    private bool _certificateValid;

    private async Task NegotiateAsync(bool directTls, CancellationToken cancellation)
    {
        using var link = cancellation.Register(Lifetime.Cancel);
        if (directTls)
        {
            await StartTlsAsync(directTls);
            _features = await OpenAsync();
            return;
        }
        _features = await OpenAsync();
        if (_features.GetChild("starttls", Ns.Tls) is not null)
        {
            await WriteNowAsync(new Element("starttls", Ns.Tls));
            var (_, proceed) = await NextAsync();
            if (proceed is null || !proceed.Is("proceed", Ns.Tls)) throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS failed");
            await StartTlsAsync(directTls);
            _features = await OpenAsync();
        }
        else if (!Server.Options.AllowPlaintext)
            throw new StreamErrorException(StreamErrors.PolicyViolation, $"{_remote} does not offer STARTTLS");
    }

    /// <summary>
    /// TLS as the initiating server, showing our certificate as the client's (for SASL EXTERNAL); the peer's must
    /// authenticate its domain when S2sRequireValidCertificates (otherwise any certificate encrypts, and dialback
    /// authenticates the peer).
    /// </summary>
    private Task StartTlsAsync(bool directTls)
    {
        var requireValid = Server.Options.S2sRequireValidCertificatesInEffect;
        return SwapToTlsAsync(ssl => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = _remote,
            ClientCertificateContext = S2s.Tls.Certificate is null ? null : S2s.Tls.StartTlsOptions.ServerCertificateContext,
            ApplicationProtocols = directTls ? [new SslApplicationProtocol("xmpp-server")] : null,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
            {
                _certificateValid = certificate is X509Certificate2 peer && S2s.Trust.Authenticates(peer, chain?.ChainPolicy.ExtraStore, _remote);
                return _certificateValid || !requireValid;
            },
        }, Lifetime.Token), _tcp.GetStream());
    }

    private async Task<Element> OpenAsync()
    {
        WriteHeader(_local, _remote, null);
        await WriteNowAsync(null);
        var (ev, header) = await NextAsync();
        if (ev != XmlEvent.StreamOpen || !header!.Is("stream", Ns.Stream))
            throw new StreamErrorException(StreamErrors.InvalidNamespace, "a stream header was expected");
        StreamId = header.GetAttribute("id") ?? throw new StreamErrorException(StreamErrors.InvalidXml, "the stream header has no id");
        var (_, features) = await NextAsync();
        if (features is null || !features.Is("features", Ns.Stream))
            throw new StreamErrorException(StreamErrors.InvalidXml, "stream features were expected");
        return features;
    }

    /// <summary>
    /// Proves our domain: by certificate (SASL EXTERNAL, XEP-0178) when the peer offers it, otherwise (or when it
    /// fails) by dialback (XEP-0220 §2.1), a key the peer checks with our authoritative server.
    /// </summary>
    /// <remarks>
    /// Before that, XEP-0288 bidirectionality is asked for when offered; after it, XEP-0198 is enabled when offered, or
    /// the link of <paramref name="previous"/> (a stream to the same domain that broke) resumed. Returns the stanzas of
    /// <paramref name="previous"/> to send again on this stream (all it had unacknowledged when it could not be resumed).
    /// </remarks>
    public async Task<Element[]> AuthenticateAsync(S2sStreamManagement? previous, CancellationToken cancellation)
    {
        using var link = cancellation.Register(Lifetime.Cancel);
        if (_features.GetChild("bidi", S2sIncoming.BidiFeature) is not null && Ssl is not null)
        {
            await WriteNowAsync(new Element("bidi", S2sIncoming.Bidi));
            Bidirectional = true;
        }
        if (!await ExternalAsync()) await DialbackAsync();
        var again = await ManageAsync(previous);
        StartWriter();
        _ = DrainAsync();
        return again;
    }

    /// <summary>
    /// XEP-0198 on this stream when the peer offers it: &lt;resume/&gt; for the broken link's id, otherwise (or when
    /// refused) &lt;enable resume='true'/&gt;. Stanzas the peer sends meanwhile (XEP-0288) are taken as usual.
    /// </summary>
    private async Task<Element[]> ManageAsync(S2sStreamManagement? previous)
    {
        if (_features.GetChild("sm", StreamManagementModule.Namespace) is null) return previous?.GiveUp() ?? [];
        if (previous?.Id is { } id)
        {
            await WriteNowAsync(new Element("resume", StreamManagementModule.Namespace).SetAttribute("previd", id)
                .SetAttribute("h", previous.Handled.ToString(CultureInfo.InvariantCulture)));
            var answer = await SmAnswerAsync();
            if (answer.Name == "resumed" && answer.GetAttribute("previd") == id
                && uint.TryParse(answer.GetAttribute("h"), NumberStyles.None, CultureInfo.InvariantCulture, out var h))
            {
                if (!Manage(previous, h, null)) throw new StreamErrorException(StreamErrors.UndefinedCondition, "handled-count-too-high");
                Log.Resumed(Logger, _remote, previous.Unacknowledged);
                return [];
            }
        }
        var again = previous?.GiveUp() ?? [];
        await WriteNowAsync(new Element("enable", StreamManagementModule.Namespace).SetAttribute("resume", "true"));
        var enabled = await SmAnswerAsync();
        if (enabled.Name == "enabled")
            Manage(new S2sStreamManagement(_local, _remote, enabled.GetAttribute("resume") is "true" or "1" ? enabled.GetAttribute("id") : null, Server.Options.SmMaxQueue), null, null);
        return again;
    }

    private async Task<Element> SmAnswerAsync()
    {
        while (true)
        {
            var (ev, element) = await NextAsync();
            if (ev == XmlEvent.StreamClose || element is null) throw new S2sUnreachableException($"{_remote} closed the stream");
            if (element.Namespace == StreamManagementModule.Namespace && element.Name is "enabled" or "resumed" or "failed") return element;
            await OnElementAsync(element);
        }
    }

    /// <summary>
    /// RFC 6120 §6 with XEP-0178 §3: true when the peer accepted our certificate for our domain. Tried only with an
    /// operator's certificate: the self-signed default can never succeed, and a failed attempt leaves some peers
    /// (ejabberd) unwilling to take dialback on the same stream.
    /// </summary>
    private async Task<bool> ExternalAsync()
    {
        var offered = _features.GetChild("mechanisms", Ns.Sasl)?.Elements.Any(m => m.Name == "mechanism" && m.Text == "EXTERNAL") == true;
        if (!offered || Ssl is null || S2s.Tls.Certificate is null || Server.Options.CertificateFile is null) return false;
        await WriteNowAsync(new Element("auth", Ns.Sasl).SetAttribute("mechanism", "EXTERNAL")
            .AddText(Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(_local))));
        var (ev, answer) = await NextAsync();
        if (ev == XmlEvent.StreamClose || answer is null) throw new S2sUnreachableException($"{_remote} closed the stream during SASL");
        if (answer.Is("success", Ns.Sasl))
        {
            RestartStream();
            _features = await OpenAsync();
            Log.Authenticated(Logger, _local, _remote, _certificateValid);
            Server.Metrics.S2sAuthenticated(ServerMetrics.SaslExternal, incoming: false);
            return true;
        }
        if (!answer.Is("failure", Ns.Sasl)) throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{answer.Name}/> is not a SASL answer");
        Log.ExternalRefused(Logger, _remote, answer.FirstElement?.Name ?? "");
        Server.Metrics.S2sAuthenticationFailed(ServerMetrics.SaslExternal, incoming: false, answer.FirstElement?.Name ?? "undefined-condition");
        return false;
    }

    private async Task DialbackAsync()
    {
        await WriteNowAsync(new Element("result", Ns.Dialback).SetAttribute("from", _local).SetAttribute("to", _remote)
            .AddText(S2s.Key(receiving: _remote, originating: _local, StreamId)));
        while (true)
        {
            var (ev, result) = await NextAsync();
            if (ev == XmlEvent.StreamClose || result is null) throw new S2sUnreachableException($"{_remote} closed the stream during dialback");
            if (result.Is("error", Ns.Stream))
            {
                Server.Metrics.S2sAuthenticationFailed(ServerMetrics.Dialback, incoming: false, result.FirstElement?.Name ?? "undefined-condition");
                throw new S2sUnreachableException($"{_remote} refused dialback: {result.FirstElement?.Name}", refused: true);
            }
            if (!result.Is("result", Ns.Dialback)) continue;
            if (result.GetAttribute("type") == "valid")
            {
                Server.Metrics.S2sAuthenticated(ServerMetrics.Dialback, incoming: false);
                return;
            }
            Server.Metrics.S2sAuthenticationFailed(ServerMetrics.Dialback, incoming: false,
                result.GetChild("error", Ns.Server)?.FirstElement?.Name ?? result.GetAttribute("type") ?? "invalid");
            throw new S2sUnreachableException($"{_remote} refused our dialback key ({result.GetAttribute("type")}{ErrorOf(result)})", refused: true);
        }

        static string ErrorOf(Element result) => result.GetChild("error", Ns.Server)?.FirstElement is { } condition ? ": " + condition.Name : "";
    }

    /// <summary>
    /// After authentication the peer sends acks (XEP-0198) and, with XEP-0288, stanzas from its domain to ours;
    /// nothing else.
    /// </summary>
    private Task DrainAsync() => RunGuardedAsync(async () =>
    {
        while (!IsClosing)
        {
            var (ev, element) = await NextAsync();
            if (ev == XmlEvent.StreamClose)
            {
                Close(null);
                return;
            }
            await OnElementAsync(element!);
        }
    }).ContinueWith(_ => _done.TrySetResult(), TaskScheduler.Default);

    private async ValueTask OnElementAsync(Element element)
    {
        if (OnAckElement(element)) return;
        if (!Bidirectional)
            throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element.Name}/> is not expected on this stream (bidirectional streams are not negotiated)");
        await ReceiveStanzaAsync(element);
    }

    /// <summary>XEP-0288 §2.2: the receiving server sends only for the inverse of the domain pair we proved.</summary>
    protected override bool MayComeFrom(string domain) => Bidirectional && domain == _remote;
    protected override bool MayGoTo(string domain) => domain == _local;

    /// <summary>XEP-0220 §2.3: asks the authoritative server whether it issued <paramref name="key"/>; then closes.</summary>
    public async Task<bool> VerifyAsync(string id, string key, CancellationToken cancellation)
    {
        using var link = cancellation.Register(Lifetime.Cancel);
        try
        {
            await WriteNowAsync(new Element("verify", Ns.Dialback).SetAttribute("from", _local).SetAttribute("to", _remote)
                .SetAttribute("id", id).AddText(key));
            while (true)
            {
                var (ev, answer) = await NextAsync();
                if (ev == XmlEvent.StreamClose || answer is null) throw new S2sUnreachableException($"{_remote} closed the stream during verification");
                if (!answer.Is("verify", Ns.Dialback) || answer.GetAttribute("id") != id) continue;
                return answer.GetAttribute("type") == "valid";
            }
        }
        finally
        {
            StartWriter();
            Close(null);
            _ = RunGuardedAsync(() => Task.CompletedTask);
        }
    }

    protected override void OnClosing() => S2s.Forget(this);
    protected override void AbortTransport() => _tcp.Dispose();
    protected override string Describe() => $"to {_remote}";
    protected override bool Incoming => false;

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: {Local} authenticated to {Remote} by certificate (SASL EXTERNAL); its certificate verified: {Verified}")]
        public static partial void Authenticated(ILogger logger, string local, string remote, bool verified);

        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: stream to {Remote} resumed (XEP-0198); {Unacknowledged} stanzas sent again")]
        public static partial void Resumed(ILogger logger, string remote, int unacknowledged);

        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: {Remote} refused our certificate ({Condition}); trying dialback")]
        public static partial void ExternalRefused(ILogger logger, string remote, string condition);
    }
}

/// <summary>A remote domain could not be reached or (<paramref name="refused"/>) would not accept our authentication.</summary>
internal sealed class S2sUnreachableException(string message, bool refused = false) : Exception(message)
{
    public bool Refused { get; } = refused;
}
