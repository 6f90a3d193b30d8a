using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using Candor.Server.Connections;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Federation;

/// <summary>
/// A stream we open to another server (RFC 6120): STARTTLS (required unless plaintext is allowed), the
/// certificate checked against the remote domain (RFC 6125, by .NET's name matching) when
/// S2sRequireValidCertificates, then either dialback for our domain (db:result) or, on a verification
/// connection, one db:verify asked on behalf of an incoming stream (XEP-0220 §2.3).
/// </summary>
internal sealed class S2sOutgoing : S2sStream
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
        foreach (var (host, port) in await s2s.ResolveAsync(remote, cancellation))
        {
            var tcp = new TcpClient { NoDelay = true };
            try
            {
                await tcp.ConnectAsync(host, port, cancellation);
                var stream = new S2sOutgoing(s2s, tcp, tcp.GetStream(), local, remote);
                await stream.NegotiateAsync(cancellation);
                return stream;
            }
            catch (Exception e) when (e is SocketException or IOException or System.Security.Authentication.AuthenticationException
                                           or StreamErrorException or XmlStreamException)
            {
                tcp.Dispose();
                last = e;
            }
        }
        throw new S2sUnreachableException(last?.Message ?? $"no address found for {remote}");
    }

    private async Task NegotiateAsync(CancellationToken cancellation)
    {
        using var link = cancellation.Register(Lifetime.Cancel);
        var features = await OpenAsync();
        if (features.GetChild("starttls", Ns.Tls) is not null)
        {
            await WriteNowAsync(new Element("starttls", Ns.Tls));
            var (_, proceed) = await NextAsync();
            if (proceed is null || !proceed.Is("proceed", Ns.Tls)) throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS failed");
            var requireValid = Server.Options.S2sRequireValidCertificatesInEffect;
            await SwapToTlsAsync(ssl => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = _remote,
                RemoteCertificateValidationCallback = (_, _, _, errors) => errors == SslPolicyErrors.None || !requireValid,
            }, Lifetime.Token), _tcp.GetStream());
            await OpenAsync();
        }
        else if (!Server.Options.AllowPlaintext)
            throw new StreamErrorException(StreamErrors.PolicyViolation, $"{_remote} does not offer STARTTLS");
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

    /// <summary>XEP-0220 §2.1: proves our domain with a key the peer checks with our authoritative server.</summary>
    public async Task AuthenticateAsync(CancellationToken cancellation)
    {
        using var link = cancellation.Register(Lifetime.Cancel);
        await WriteNowAsync(new Element("result", Ns.Dialback).SetAttribute("from", _local).SetAttribute("to", _remote)
            .AddText(S2s.Key(receiving: _remote, originating: _local, StreamId)));
        while (true)
        {
            var (ev, result) = await NextAsync();
            if (ev == XmlEvent.StreamClose || result is null) throw new S2sUnreachableException($"{_remote} closed the stream during dialback");
            if (result.Is("error", Ns.Stream)) throw new S2sUnreachableException($"{_remote} refused dialback: {result.FirstElement?.Name}");
            if (!result.Is("result", Ns.Dialback)) continue;
            if (result.GetAttribute("type") == "valid") break;
            throw new S2sUnreachableException($"{_remote} refused our dialback key ({result.GetAttribute("type")})");
        }
        StartWriter();
        _ = DrainAsync();
    }

    /// <summary>After dialback the peer sends nothing on this stream but its end (no XEP-0288 yet).</summary>
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
            throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element!.Name}/> is not expected on this stream (bidirectional streams are not negotiated)");
        }
    }).ContinueWith(_ => _done.TrySetResult(), TaskScheduler.Default);

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

    protected override void OnClosing() => S2s.Forget(_remote, this);
    protected override void AbortTransport() => _tcp.Dispose();
    protected override string Describe() => $"to {_remote}";
}

/// <summary>A remote domain could not be reached or would not accept us.</summary>
internal sealed class S2sUnreachableException(string message) : Exception(message);
