using System.CommandLine;
using System.Net;
using System.Text;
using Candor.Client;
using Candor.Xmpp;

namespace Candor.Cli;

/// <summary>
/// Exit codes of the client commands (<c>candor chat</c>, <c>send</c>, <c>listen</c>): one per kind of failure,
/// so scripts can tell them apart. The reason is printed as one line on stderr.
/// <list type="table">
/// <item><term>0</term><description>success</description></item>
/// <item><term>1</term><description>unexpected failure</description></item>
/// <item><term>2</term><description>usage: invalid JID, --server or --fingerprint, no password</description></item>
/// <item><term>10</term><description>server unreachable: the name does not resolve, or the connection is refused</description></item>
/// <item><term>11</term><description>timeout: no session within --timeout, or a request unanswered</description></item>
/// <item><term>12</term><description>TLS unavailable: STARTTLS not offered or refused, or the handshake failed</description></item>
/// <item><term>13</term><description>certificate rejected: not valid for the domain, or not the pinned --fingerprint</description></item>
/// <item><term>14</term><description>authentication failed (wrong user or password, no usable SASL mechanism)</description></item>
/// <item><term>15</term><description>the server closed the connection mid-stream</description></item>
/// <item><term>16</term><description>the server ended the stream with a stream error</description></item>
/// <item><term>17</term><description>the server sent malformed XML or broke the protocol</description></item>
/// <item><term>18</term><description>the message was refused (an error came back for it)</description></item>
/// <item><term>19</term><description>--require-e2e, and the recipient publishes no OMEMO devices (or none is trusted)</description></item>
/// <item><term>130</term><description>interrupted (Ctrl+C) before finishing</description></item>
/// </list>
/// </summary>
internal static class ClientExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int Unreachable = 10;
    public const int Timeout = 11;
    public const int TlsUnavailable = 12;
    public const int CertificateRejected = 13;
    public const int AuthenticationFailed = 14;
    public const int ConnectionClosed = 15;
    public const int StreamError = 16;
    public const int ProtocolError = 17;
    public const int Refused = 18;
    public const int NotEncrypted = 19;
    public const int Interrupted = 130;

    public static int For(Exception e) => e switch
    {
        XmppConnectionException { Reason: ConnectionFailure.Unresolvable or ConnectionFailure.Unreachable } => Unreachable,
        XmppConnectionException { Reason: ConnectionFailure.Timeout } => Timeout,
        XmppConnectionException => ConnectionClosed,
        XmppTlsException { Reason: TlsFailure.CertificateInvalid or TlsFailure.FingerprintMismatch } => CertificateRejected,
        XmppTlsException => TlsUnavailable,
        XmppAuthenticationException => AuthenticationFailed,
        XmppStreamErrorException => StreamError,
        XmppProtocolException => ProtocolError,
        XmppTimeoutException => Timeout,
        XmppStanzaException => Refused,
        OperationCanceledException => Interrupted,
        _ => Failure,
    };
}

internal sealed class UsageException(string message) : Exception(message);

/// <summary>The options <c>chat</c>, <c>send</c> and <c>listen</c> share, and how they become <see cref="XmppClientOptions"/>.</summary>
internal sealed class ClientOptions
{
    public const string PasswordVariable = "CANDOR_PASSWORD";

    public Option<string> Jid { get; } = new("--jid") { Description = "Your account, e.g. alice@example.org (or alice@example.org/resource)", Required = true };
    public Option<string?> Server { get; } = new("--server") { Description = "Connect to host:port instead of looking up the domain's DNS SRV records (port 5222 if left out)" };
    public Option<bool> DirectTls { get; } = new("--direct-tls") { Description = "With --server: TLS from the first byte (XEP-0368, usually port 5223) instead of STARTTLS" };
    public Option<bool> Insecure { get; } = new("--insecure") { Description = "Do not check the server certificate (development servers only; warns every time)" };
    public Option<string?> Fingerprint { get; } = new("--fingerprint") { Description = "Trust exactly the certificate with this SHA-256 fingerprint (hex, colons allowed)" };
    public Option<int> Timeout { get; } = new("--timeout") { Description = "Seconds allowed to connect and for each request", DefaultValueFactory = _ => 30 };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Jid, Server, DirectTls, Insecure, Fingerprint, Timeout }) command.Add(option);
    }

    /// <summary>Builds the client options; throws <see cref="UsageException"/> for bad input. The password comes from
    /// CANDOR_PASSWORD, else a prompt without echo (or one line of redirected stdin).</summary>
    public XmppClientOptions Load(ParseResult parse)
    {
        var jidText = parse.GetValue(Jid)!;
        if (!Xmpp.Jid.TryParse(jidText, out var jid) || jid.Local is null)
            throw new UsageException($"invalid JID '{jidText}' (expected user@domain)");
        string? host = null;
        var port = 5222;
        if (parse.GetValue(Server) is { } server) (host, port) = ParseServer(server);
        var fingerprint = parse.GetValue(Fingerprint);
        try
        {
            fingerprint = fingerprint is null ? null : NormalizeFingerprint(fingerprint);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"--fingerprint: '{fingerprint}' is not a SHA-256 fingerprint (64 hex digits)");
        }
        var seconds = parse.GetValue(Timeout);
        if (seconds <= 0) throw new UsageException("--timeout must be positive");
        if (parse.GetValue(DirectTls) && host is null) throw new UsageException("--direct-tls needs --server");
        var password = Environment.GetEnvironmentVariable(PasswordVariable);
        if (string.IsNullOrEmpty(password)) password = PromptPassword($"Password for {jid.Bare}: ");
        if (string.IsNullOrEmpty(password)) throw new UsageException($"a password is required (prompted, or in {PasswordVariable})");
        return new XmppClientOptions
        {
            Jid = jid,
            Password = password,
            Host = host,
            Port = port,
            TlsMode = parse.GetValue(DirectTls) ? TlsMode.DirectTls : TlsMode.StartTls,
            CertificateFingerprint = fingerprint,
            Insecure = parse.GetValue(Insecure),
            ConnectTimeout = TimeSpan.FromSeconds(seconds),
            RequestTimeout = TimeSpan.FromSeconds(seconds),
            UserAgentId = UserAgentId(jid),
            UserAgentSoftware = "candor " + (typeof(ClientOptions).Assembly.GetName().Version?.ToString(3) ?? "0.1.0"),
            UserAgentDevice = Environment.MachineName,
        };
    }

    /// <summary>
    /// A random XEP-0388 user-agent id per account, kept in the user's configuration directory
    /// (<c>$XDG_CONFIG_HOME/candor/user-agent/</c>, usually <c>~/.config</c>), so that a server which identifies
    /// clients by it (Candor's login notices) knows this installation again. Null (none sent) when the
    /// directory cannot be used.
    /// </summary>
    internal static string? UserAgentId(Jid account)
    {
        // DoNotVerify: the directory may not exist yet (a fresh account); it is created below.
        var config = Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (config.Length == 0) return null;
        var directory = Path.Combine(config, "candor", "user-agent");
        var path = Path.Combine(directory, Uri.EscapeDataString(account.Bare.ToString()));
        try
        {
            if (File.Exists(path) && Guid.TryParse(File.ReadAllText(path).Trim(), out var known)) return known.ToString();
            Directory.CreateDirectory(directory);
            var id = Guid.NewGuid().ToString();
            File.WriteAllText(path, id + "\n");
            return id;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string NormalizeFingerprint(string text)
    {
        var hex = text.Replace(":", "").Replace(" ", "");
        if (hex.Length != 64 || !hex.All(Uri.IsHexDigit)) throw new ArgumentException(text);
        return hex.ToUpperInvariant();
    }

    /// <summary>host, host:port, [v6] or [v6]:port.</summary>
    internal static (string Host, int Port) ParseServer(string text)
    {
        string host = text;
        string? port = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0) throw new UsageException($"--server: '{text}' is not host:port");
            host = text[1..close];
            if (close + 1 < text.Length)
            {
                if (text[close + 1] != ':') throw new UsageException($"--server: '{text}' is not host:port");
                port = text[(close + 2)..];
            }
        }
        else if (text.Count(c => c == ':') == 1)
        {
            host = text[..text.IndexOf(':')];
            port = text[(text.IndexOf(':') + 1)..];
        }
        if (host.Length == 0 || (host.Contains(':') && !IPAddress.TryParse(host, out _)))
            throw new UsageException($"--server: '{text}' is not host:port");
        if (port is null) return (host, 5222);
        if (!int.TryParse(port, out var number) || number is < 1 or > 65535)
            throw new UsageException($"--server: '{port}' is not a port number");
        return (host, number);
    }

    public static XmppClient CreateClient(XmppClientOptions options, string command)
    {
        var client = new XmppClient(options);
        client.Warning += w => Console.Error.WriteLine($"candor {command}: warning: {w}");
        return client;
    }

    /// <summary>One line on stderr and the exit code for the failure's kind.</summary>
    public static int Fail(string command, Exception e)
    {
        var message = e switch
        {
            OperationCanceledException => "interrupted",
            XmppException or UsageException => e.Message,
            _ => e.GetBaseException().Message,
        };
        Console.Error.WriteLine($"candor {command}: {message}");
        return e is UsageException ? ClientExitCodes.Usage : ClientExitCodes.For(e);
    }

    /// <summary>Reads a password without echo from a terminal, or one line from redirected input.</summary>
    private static string? PromptPassword(string prompt)
    {
        if (Console.IsInputRedirected) return Console.In.ReadLine();
        Console.Error.Write(prompt);
        var text = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) break;
            if (key.Key == ConsoleKey.Backspace)
            {
                if (text.Length > 0) text.Length--;
                continue;
            }
            if (!char.IsControl(key.KeyChar)) text.Append(key.KeyChar);
        }
        Console.Error.WriteLine();
        return text.ToString();
    }

    /// <summary>A contact given on the command line: a bare user name means a user of our own domain.</summary>
    public static Jid ParseContact(string text, Jid self)
    {
        if (!text.Contains('@') && !text.Contains('.')) text += "@" + self.Domain;
        if (!Xmpp.Jid.TryParse(text, out var jid)) throw new UsageException($"invalid JID '{text}'");
        return jid;
    }
}
