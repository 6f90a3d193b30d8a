using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Hosting;
using Candor.Server.Modules.Policy;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;
using Microsoft.Extensions.Configuration;

namespace Candor.Fuzz;

/// <summary>
/// One fuzz target per input format a stranger controls. Each takes raw bytes, runs the code under test and
/// swallows only the exceptions that code documents for bad input (listed per target); anything else escapes and
/// is a finding (afl-fuzz records it as a crash, the corpus replay test fails). A target also throws
/// <see cref="FuzzFinding"/> when an invariant it checks does not hold.
/// </summary>
public static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>
    {
        ["stream"] = data => Parser(data, fragment: false),
        ["fragment"] = data => Parser(data, fragment: true),
        ["jid"] = JidPreparation,
        ["scram-first"] = ScramClientFirst,
        ["scram-final"] = ScramClientFinal,
        ["plain"] = Plain,
        ["config"] = Configuration,
        ["policy"] = Policy,
        ["differential"] = Differential.Check,
    };

    // Limits low enough that the fuzzer reaches them with small inputs.
    private static readonly XmlLimits FuzzLimits = new()
    {
        MaxStanzaBytes = 4096, MaxDepth = 16, MaxAttributes = 8, MaxAttributeBytes = 512, MaxNameBytes = 64, MaxHeaderBytes = 1024,
    };

    /// <summary>
    /// The stream parser, fed the whole input at once and again in pieces cut where the input's first byte says:
    /// both ways must give the same events and the same outcome. Documented: <see cref="XmlStreamException"/>.
    /// </summary>
    private static void Parser(byte[] data, bool fragment)
    {
        var whole = Events(data, fragment, data.Length);
        var step = data.Length == 0 ? 1 : 1 + data[0] % 13;
        var pieces = Events(data, fragment, step);
        if (whole != pieces) throw new FuzzFinding($"fed whole and in {step}-byte pieces the parser disagrees:\n{whole}\n---\n{pieces}");
    }

    /// <summary>The events as text, ending with the error condition if the parser refused the input.</summary>
    public static string Events(byte[] data, bool fragment, int step, XmlLimits? limits = null)
    {
        var parser = new XmppStreamParser(limits ?? FuzzLimits, fragment);
        var log = new StringBuilder();
        var start = 0;
        try
        {
            for (var arrived = Math.Min(step, data.Length); ; arrived = Math.Min(arrived + step, data.Length))
            {
                while (true)
                {
                    var buffer = new ReadOnlySequence<byte>(data, start, arrived - start);
                    var ev = parser.Read(buffer, out var consumed, out var element);
                    start += (int)buffer.Slice(0, consumed).Length;
                    if (ev == XmlEvent.None) break;
                    log.Append(ev).Append(' ').Append(element is null ? "" : Dump(element)).Append('\n');
                }
                if (arrived == data.Length) break;
            }
            log.Append("pending ").Append(data.Length - start);
        }
        catch (XmlStreamException e)
        {
            log.Append("refused ").Append(e.Condition);
        }
        return log.ToString();
    }

    /// <summary>Every detail of a tree: names, namespaces, attributes in order, text nodes.</summary>
    public static string Dump(Node node)
    {
        if (node is TextNode text) return "\"" + text.Value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        var element = (Element)node;
        var sb = new StringBuilder().Append('{').Append(element.Namespace).Append('}').Append(element.Name);
        if (element.Attributes.Count > 0)
            sb.Append('[').AppendJoin(' ', element.Attributes.Select(a => a.Key + "=" + Dump(new TextNode(a.Value)))).Append(']');
        if (element.Nodes.Count > 0) sb.Append('(').AppendJoin(' ', element.Nodes.Select(Dump)).Append(')');
        return sb.ToString();
    }

    /// <summary>
    /// JID preparation (RFC 7622). Documented: <see cref="JidFormatException"/> from Parse, false from TryParse.
    /// Invariant: preparation is idempotent — a prepared JID's text parses to the same JID.
    /// </summary>
    private static void JidPreparation(byte[] data)
    {
        var text = Encoding.UTF8.GetString(data);
        if (!Jid.TryParse(text, out var jid))
        {
            try
            {
                Jid.Parse(text);
                throw new FuzzFinding("TryParse refused what Parse accepted: " + text);
            }
            catch (JidFormatException)
            {
                return;
            }
        }
        var again = Jid.Parse(jid.ToString());
        if (again != jid || again.ToString() != jid.ToString())
            throw new FuzzFinding($"preparation is not idempotent: '{text}' -> '{jid}' -> '{again}'");
        if (jid.Bare.ToString() != Jid.Create(jid.Local, jid.Domain).ToString())
            throw new FuzzFinding($"bare JID differs from its parts: '{jid}'");
    }

    private static readonly byte[] ChannelBindingData = SHA256.HashData("candor fuzz certificate"u8);

    /// <summary>SCRAM client-first-message, read by the plain, -PLUS and downgrade-checking servers. Documented: <see cref="SaslException"/>.</summary>
    private static void ScramClientFirst(byte[] data)
    {
        foreach (var (plus, offersPlus) in new[] { (false, false), (false, true), (true, true) })
        {
            var server = new ScramServer(ScramAlgorithm.Sha256, plus, offersPlus, plus ? "tls-server-end-point" : null, plus ? ChannelBindingData : null);
            try
            {
                server.ReadClientFirst(data);
                server.CreateServerFirstForUnknownUser("secret"u8, 4096);
            }
            catch (SaslException)
            {
            }
        }
    }

    // RFC 7677's example exchange: user "user", password "pencil", these nonces and salt.
    public const string ClientNonce = "rOprNGfwEbeRWgbNEkqO";
    public const string ServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    public const string ClientFirst = "n,,n=user,r=" + ClientNonce;
    private static readonly Lazy<ScramCredential> PencilCredential = new(() =>
        ScramCredential.Derive(ScramAlgorithm.Sha256, "pencil", Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096));

    /// <summary>
    /// SCRAM client-final-message, after RFC 7677's client-first and server-first. Documented: <see cref="SaslException"/>;
    /// false for a wrong proof. Invariant: only RFC 7677's own client-final succeeds.
    /// </summary>
    private static void ScramClientFinal(byte[] data)
    {
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null, ServerNonce);
        server.ReadClientFirst(Encoding.UTF8.GetBytes(ClientFirst));
        server.CreateServerFirst(PencilCredential.Value);
        try
        {
            if (server.VerifyClientFinal(data, out _) && !data.AsSpan().StartsWith("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="u8))
                throw new FuzzFinding("a client-final-message that is not the right one succeeded: " + Encoding.UTF8.GetString(data));
        }
        catch (SaslException)
        {
        }
    }

    /// <summary>The PLAIN message (RFC 4616). Documented: no exception at all, false for anything malformed.</summary>
    private static void Plain(byte[] data)
    {
        if (SaslPlain.TryParse(data, out var authzid, out var authcid, out var password)
            && (authcid.Length == 0 || password.Length == 0 || authcid.Contains('\0') || password.Contains('\0') || authzid?.Contains('\0') == true))
            throw new FuzzFinding("PLAIN accepted an empty or NUL-bearing field");
    }

    /// <summary>
    /// The JSON configuration file, bound to <see cref="ServerOptions"/> as <c>candor serve --config</c> does, then
    /// validated. Documented: <see cref="OptionsException"/> (the CLI prints it as one line and exits with 2).
    /// </summary>
    private static void Configuration(byte[] data)
    {
        try
        {
            var options = ServerOptions.FromConfiguration(new ConfigurationBuilder().AddJsonStream(new MemoryStream(data)));
            options.Validate();
        }
        catch (OptionsException)
        {
        }
    }

    /// <summary>
    /// The policy file, parsed, compiled and matched against a sample message. Documented: <see cref="PolicyException"/>
    /// (the server refuses the file with one line naming the line and the reason).
    /// </summary>
    private static void Policy(byte[] data)
    {
        try
        {
            var matcher = new PolicyMatcher(PolicyLoader.Parse(data));
            PolicyMatches? matches = null;
            matcher.Match("Buy now! ＢＵＹ ｎｏｗ, b.u.y n-o-w — купить сейчас 立即购买", PolicyFields.Body, ref matches);
            matcher.Decide(matches, senderIsStranger: true);
        }
        catch (PolicyException)
        {
        }
    }
}

/// <summary>An invariant a fuzz target checks did not hold.</summary>
public sealed class FuzzFinding(string message) : Exception(message);
