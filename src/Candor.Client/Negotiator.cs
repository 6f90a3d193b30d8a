using System.Net.Sockets;
using System.Security.Cryptography;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Client;

/// <summary>What a finished negotiation yields: the transport with a bound resource, how it was reached, and the
/// stream features offered after authentication.</summary>
internal sealed record Negotiated(XmppTransport Transport, Jid BoundJid, string Mechanism, bool Sasl2, string EndPoint, bool DirectTls, Element Features);

/// <summary>
/// Reaching the server and negotiating the stream (RFC 6120 §4-§7): endpoints (explicit or DNS SRV), TCP,
/// STARTTLS or direct TLS, SASL (XEP-0388 SASL2 when offered, else RFC 6120), resource binding and the legacy
/// session when it is required.
/// </summary>
internal sealed class Negotiator(XmppClientOptions options, Action<string> warn)
{
    private const string ChannelBindingType = ChannelBinding.TlsServerEndPointType;
    private readonly string _domain = options.Jid.Domain;

    public async Task<Negotiated> RunAsync(CancellationToken cancellation)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(options.ConnectTimeout);
        var endpoint = "";
        try
        {
            var endpoints = await EndpointsAsync(timeout.Token);
            XmppConnectionException? last = null;
            foreach (var (host, port, directTls) in endpoints)
            {
                endpoint = $"{host}:{port}";
                XmppTransport transport;
                try
                {
                    transport = await XmppTransport.ConnectAsync(host, port, timeout.Token);
                }
                catch (SocketException e)
                {
                    last = e.SocketErrorCode is SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain
                        ? new XmppConnectionException(ConnectionFailure.Unresolvable, $"cannot resolve {host}: {e.Message}", e)
                        : new XmppConnectionException(ConnectionFailure.Unreachable, $"cannot connect to {endpoint}: {e.Message}", e);
                    continue;
                }
                try
                {
                    if (options.Insecure && options.CertificateFingerprint is null)
                        warn($"INSECURE: the certificate of {_domain} at {endpoint} is not verified (--insecure); anyone on the path can read this session");
                    var (jid, mechanism, sasl2, features) = await NegotiateAsync(transport, directTls, timeout.Token);
                    return new Negotiated(transport, jid, mechanism, sasl2, endpoint, directTls, features);
                }
                catch
                {
                    await transport.DisposeAsync();
                    throw;
                }
            }
            throw last ?? new XmppConnectionException(ConnectionFailure.Unreachable, $"no address to connect to for {_domain}");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellation.IsCancellationRequested)
        {
            var where = endpoint.Length > 0 ? endpoint : _domain;
            throw new XmppConnectionException(ConnectionFailure.Timeout,
                $"no session with {where} within {options.ConnectTimeout.TotalSeconds:0} s");
        }
    }

    private async Task<List<(string Host, int Port, bool DirectTls)>> EndpointsAsync(CancellationToken cancellation)
    {
        if (options.Host is not null) return [(options.Host, options.Port, options.TlsMode == TlsMode.DirectTls)];
        // XEP-0368: both record sets are merged by priority; direct TLS first among equals.
        var dnsTimeout = TimeSpan.FromSeconds(3);
        var direct = SrvResolver.QueryAsync("_xmpps-client._tcp." + _domain, options.DnsServers, dnsTimeout, cancellation);
        var starttls = SrvResolver.QueryAsync("_xmpp-client._tcp." + _domain, options.DnsServers, dnsTimeout, cancellation);
        var records = (await direct).Select(r => (r, true)).Concat((await starttls).Select(r => (r, false)))
            .Where(x => x.r.Target != ".")
            .OrderBy(x => x.r.Priority).ThenBy(x => x.Item2 ? 0 : 1).ThenByDescending(x => x.r.Weight)
            .Select(x => (x.r.Target, x.r.Port, x.Item2)).ToList();
        if (records.Count == 0) records.Add((_domain, 5222, false));
        return records;
    }

    private async Task<(Jid, string, bool, Element)> NegotiateAsync(XmppTransport transport, bool directTls, CancellationToken cancellation)
    {
        if (directTls) await transport.StartTlsAsync(_domain, options, directTls: true, cancellation);
        var features = await OpenStreamAsync(transport, cancellation);
        if (!directTls)
        {
            if (features.GetChild("starttls", Ns.Tls) is null)
                throw new XmppTlsException(TlsFailure.NotOffered, $"{_domain} does not offer STARTTLS; refusing to continue without encryption");
            await transport.WriteAsync(new Element("starttls", Ns.Tls), cancellation);
            var answer = await ReadElementAsync(transport, cancellation);
            if (answer.Is("failure", Ns.Tls))
                throw new XmppTlsException(TlsFailure.Refused, $"{_domain} refused STARTTLS");
            if (!answer.Is("proceed", Ns.Tls))
                throw new XmppProtocolException($"expected <proceed/> after STARTTLS, got <{answer.Name}/>");
            await transport.StartTlsAsync(_domain, options, directTls: false, cancellation);
            features = await OpenStreamAsync(transport, cancellation);
        }
        var framing = options.UseSasl2 && features.GetChild("authentication", Ns.Sasl2) is not null
            ? SaslFraming.Sasl2(UserAgent())
            : SaslFraming.Rfc6120;
        var mechanism = await AuthenticateAsync(transport, features, framing, cancellation);
        // XEP-0388 §2.6.1: after SASL2 success the new features follow on the same stream; RFC 6120 restarts it.
        features = framing.IsSasl2 ? await ReadFeaturesAsync(transport, cancellation) : await OpenStreamAsync(transport, cancellation);
        var jid = await BindAsync(transport, features, cancellation);
        return (jid, mechanism, framing.IsSasl2, features);
    }

    /// <summary>The XEP-0388 &lt;user-agent/&gt; of <see cref="XmppClientOptions"/>, or null when it says nothing.</summary>
    private Element? UserAgent()
    {
        if (options.UserAgentId is null && options.UserAgentSoftware is null && options.UserAgentDevice is null) return null;
        var agent = new Element("user-agent", Ns.Sasl2).SetAttribute("id", options.UserAgentId);
        if (options.UserAgentSoftware is { } software) agent.AddChild("software").AddText(software);
        if (options.UserAgentDevice is { } device) agent.AddChild("device").AddText(device);
        return agent;
    }

    /// <summary>Opens a stream and returns the server's features.</summary>
    private async Task<Element> OpenStreamAsync(XmppTransport transport, CancellationToken cancellation)
    {
        await transport.OpenStreamAsync(_domain, transport.Tls is null ? null : options.Jid.Bare, cancellation);
        var (ev, header) = await transport.ReadAsync(cancellation);
        if (ev != XmlEvent.StreamOpen) throw new XmppProtocolException("the server did not open a stream");
        if (header!.Namespace != Ns.Stream || header.Name != "stream")
            throw new XmppProtocolException($"the server opened <{header.Name}/> in '{header.Namespace}', not an XMPP stream");
        return await ReadFeaturesAsync(transport, cancellation);
    }

    private static async Task<Element> ReadFeaturesAsync(XmppTransport transport, CancellationToken cancellation)
    {
        var features = await ReadElementAsync(transport, cancellation);
        if (!features.Is("features", Ns.Stream))
            throw new XmppProtocolException($"expected stream features, got <{features.Name}/>");
        return features;
    }

    /// <summary>The next element; a stream error or the end of the stream becomes an exception.</summary>
    internal static async Task<Element> ReadElementAsync(XmppTransport transport, CancellationToken cancellation)
    {
        while (true)
        {
            var (ev, element) = await transport.ReadAsync(cancellation);
            switch (ev)
            {
                case XmlEvent.StreamClose:
                    throw new XmppConnectionException(ConnectionFailure.ClosedByServer, "the server closed the stream");
                case XmlEvent.StreamOpen:
                    throw new XmppProtocolException("the server opened a second stream");
                case XmlEvent.Element when element!.Is("error", Ns.Stream):
                    throw StreamError(element);
                case XmlEvent.Element:
                    return element!;
            }
        }
    }

    internal static XmppStreamErrorException StreamError(Element error)
    {
        string condition = "undefined-condition";
        foreach (var child in error.Elements)
            if (child.Namespace == Ns.Streams && child.Name != "text") { condition = child.Name; break; }
        return new XmppStreamErrorException(condition, error.GetChildText("text", Ns.Streams));
    }

    private async Task<string> AuthenticateAsync(XmppTransport transport, Element features, SaslFraming framing, CancellationToken cancellation)
    {
        var offered = framing.Mechanisms(features);
        // XEP-0440 names the channel-binding types the server supports; tls-server-end-point is the one .NET can produce.
        var bindingTypes = features.GetChild("sasl-channel-binding", Ns.SaslChannelBinding)?.Elements
            .Select(e => e.GetAttribute("type")).ToHashSet() ?? [];
        byte[]? bindingData = null;
        if (transport.ServerCertificate is { } certificate)
        {
            try
            {
                bindingData = ChannelBinding.TlsServerEndPoint(certificate);
            }
            catch (NotSupportedException)
            {
            }
        }
        var canBind = bindingData is not null && bindingTypes.Contains(ChannelBindingType);
        var mechanism = options.Mechanisms.FirstOrDefault(m => offered.Contains(m) && (!m.EndsWith("-PLUS", StringComparison.Ordinal) || canBind)
            && m is "SCRAM-SHA-256-PLUS" or "SCRAM-SHA-1-PLUS" or "SCRAM-SHA-256" or "SCRAM-SHA-1" or "PLAIN");
        if (mechanism is null)
            throw new XmppAuthenticationException(XmppAuthenticationException.NoMechanism,
                $"no usable SASL mechanism: {_domain} offers {(offered.Count == 0 ? "none" : string.Join(", ", offered.Order()))}");
        var user = options.Jid.Local ?? throw new ArgumentException("the JID has no localpart");
        if (mechanism == "PLAIN")
        {
            if (transport.Tls is null) throw new InvalidOperationException("PLAIN is only used over TLS");
            await transport.WriteAsync(framing.Start(mechanism, SaslPlain.Create(null, user, options.Password)), cancellation);
            await ExpectSuccessAsync(transport, framing, null, cancellation);
            return mechanism;
        }
        var plus = mechanism.EndsWith("-PLUS", StringComparison.Ordinal);
        var algorithm = mechanism.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? ScramAlgorithm.Sha256 : ScramAlgorithm.Sha1;
        // RFC 5802 §6: 'y' says "I could bind, you did not offer -PLUS"; when -PLUS is offered with types we cannot
        // produce, binding is impossible rather than downgraded, so the honest flag is 'n'.
        var anyPlusOffered = offered.Any(m => m.EndsWith("-PLUS", StringComparison.Ordinal));
        var passBinding = plus || (!anyPlusOffered && bindingData is not null);
        var scram = new ScramClient(algorithm, user, options.Password,
            passBinding ? ChannelBindingType : null, passBinding ? bindingData : null, serverSupportsPlus: plus);
        await transport.WriteAsync(framing.Start(mechanism, scram.CreateClientFirst()), cancellation);
        var challenge = await ReadSaslAsync(transport, framing, cancellation);
        if (!challenge.Is("challenge", framing.Namespace)) throw Failure(challenge);
        byte[] final;
        try
        {
            final = scram.CreateClientFinal(Base64(challenge));
        }
        catch (SaslException e)
        {
            await transport.WriteAsync(new Element("abort", framing.Namespace), cancellation);
            throw new XmppAuthenticationException(e.Failure.ToElementName(), $"SASL {mechanism}: {e.Message}");
        }
        await transport.WriteAsync(framing.Response(final), cancellation);
        await ExpectSuccessAsync(transport, framing, scram, cancellation);
        return mechanism;
    }

    /// <summary>
    /// The two framings of one exchange: RFC 6120 §6 (&lt;auth/&gt;, data as the elements' text) and XEP-0388
    /// (&lt;authenticate/&gt; with &lt;initial-response/&gt; and the user agent, success data in &lt;additional-data/&gt;).
    /// The mechanisms and their messages are the same.
    /// </summary>
    private sealed class SaslFraming
    {
        public static readonly SaslFraming Rfc6120 = new(Ns.Sasl, null);
        public static SaslFraming Sasl2(Element? userAgent) => new(Ns.Sasl2, userAgent);

        private readonly Element? _userAgent;

        private SaslFraming(string ns, Element? userAgent)
        {
            Namespace = ns;
            _userAgent = userAgent;
        }

        public string Namespace { get; }
        public bool IsSasl2 => Namespace == Ns.Sasl2;

        public HashSet<string> Mechanisms(Element features) =>
            features.GetChild(IsSasl2 ? "authentication" : "mechanisms", Namespace)?.Elements
                .Where(e => e.Is("mechanism", Namespace)).Select(e => e.Text.Trim()).ToHashSet() ?? [];

        public Element Start(string mechanism, byte[] initial)
        {
            if (!IsSasl2)
                return new Element("auth", Ns.Sasl).SetAttribute("mechanism", mechanism).AddText(initial.Length == 0 ? "=" : Convert.ToBase64String(initial));
            var authenticate = new Element("authenticate", Ns.Sasl2).SetAttribute("mechanism", mechanism);
            authenticate.AddChild("initial-response").AddText(Convert.ToBase64String(initial));
            if (_userAgent is not null) authenticate.Add(_userAgent.Clone());
            return authenticate;
        }

        public Element Response(byte[] data) => new Element("response", Namespace).AddText(Convert.ToBase64String(data));

        /// <summary>The mechanism's data on success: the element's text (RFC 6120) or &lt;additional-data/&gt; (XEP-0388).</summary>
        public Element SuccessData(Element success) =>
            IsSasl2 ? success.GetChild("additional-data", Ns.Sasl2) ?? new Element("additional-data", Ns.Sasl2) : success;
    }

    private static async Task<Element> ReadSaslAsync(XmppTransport transport, SaslFraming framing, CancellationToken cancellation)
    {
        var element = await ReadElementAsync(transport, cancellation);
        if (element.Namespace != framing.Namespace) throw new XmppProtocolException($"expected a SASL answer, got <{element.Name}/>");
        return element;
    }

    /// <summary>Reads &lt;success/&gt;, checking the SCRAM server signature, which may come in the success or a last challenge.</summary>
    private async Task ExpectSuccessAsync(XmppTransport transport, SaslFraming framing, ScramClient? scram, CancellationToken cancellation)
    {
        var answer = await ReadSaslAsync(transport, framing, cancellation);
        var verified = scram is null;
        if (answer.Is("challenge", framing.Namespace) && scram is not null)
        {
            verified = scram.VerifyServerFinal(Base64(answer));
            if (!verified) throw ServerSignature();
            await transport.WriteAsync(new Element("response", framing.Namespace), cancellation);
            answer = await ReadSaslAsync(transport, framing, cancellation);
        }
        if (!answer.Is("success", framing.Namespace)) throw Failure(answer);
        if (!verified && !scram!.VerifyServerFinal(Base64(framing.SuccessData(answer)))) throw ServerSignature();
        // XEP-0388: the identity the server authorized; it must be this account.
        if (framing.IsSasl2 && (!Jid.TryParse(answer.GetChildText("authorization-identifier", Ns.Sasl2)?.Trim(), out var authorized)
                                || authorized.Bare != options.Jid.Bare))
            throw new XmppProtocolException($"the server authorized '{answer.GetChildText("authorization-identifier", Ns.Sasl2)}', not {options.Jid.Bare}");
    }

    private static XmppAuthenticationException ServerSignature() =>
        new(XmppAuthenticationException.BadServerSignature, "the server could not prove it knows the password (bad SCRAM server signature)");

    private static XmppException Failure(Element answer)
    {
        if (answer.Name != "failure" || answer.Namespace is not (Ns.Sasl or Ns.Sasl2))
            return new XmppProtocolException($"unexpected SASL element <{answer.Name}/>");
        // The condition is in the RFC 6120 namespace in both profiles; the text in the failure's own.
        var condition = answer.Elements.FirstOrDefault(e => e.Namespace == Ns.Sasl && e.Name != "text")?.Name ?? "not-authorized";
        var text = answer.GetChildText("text", answer.Namespace);
        var message = condition == "not-authorized" ? "authentication failed: wrong user name or password" : $"authentication failed: {condition}";
        return new XmppAuthenticationException(condition, text is null ? message : $"{message} ({text})");
    }

    private static byte[] Base64(Element element)
    {
        var text = element.Text.Trim();
        if (text is "" or "=") return [];
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException e)
        {
            throw new XmppProtocolException("the server sent invalid base64 in SASL", e);
        }
    }

    private async Task<Jid> BindAsync(XmppTransport transport, Element features, CancellationToken cancellation)
    {
        if (features.GetChild("bind", Ns.Bind) is null) throw new XmppProtocolException("the server does not offer resource binding");
        var id = "bind-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4));
        var iq = Stanza.CreateIq("set", id, null, null);
        var bind = iq.AddChild("bind", Ns.Bind);
        if (options.Jid.Resource is { } resource) bind.AddChild("resource").AddText(resource);
        await transport.WriteAsync(iq, cancellation);
        var result = await ReadIqResultAsync(transport, id, cancellation);
        var text = result.GetChild("bind", Ns.Bind)?.GetChildText("jid", Ns.Bind);
        if (!Jid.TryParse(text, out var jid) || jid.IsBare) throw new XmppProtocolException($"the server bound an invalid JID '{text}'");
        // RFC 3921 session establishment: only servers that still require it get it.
        if (features.GetChild("session", Ns.Session) is { } session && session.GetChild("optional", Ns.Session) is null)
        {
            var sid = "session-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4));
            var request = Stanza.CreateIq("set", sid, null, null);
            request.AddChild("session", Ns.Session);
            await transport.WriteAsync(request, cancellation);
            await ReadIqResultAsync(transport, sid, cancellation);
        }
        return jid;
    }

    private static async Task<Element> ReadIqResultAsync(XmppTransport transport, string id, CancellationToken cancellation)
    {
        while (true)
        {
            var element = await ReadElementAsync(transport, cancellation);
            if (!element.IsIq() || element.Id() != id) continue;
            if (StanzaErrorInfo.From(element) is { } error) throw new XmppStanzaException(error, element);
            return element;
        }
    }
}
