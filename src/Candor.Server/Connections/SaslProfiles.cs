using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Connections;

/// <summary>
/// The two ways a client frames SASL, over one <see cref="SaslNegotiator"/>: RFC 6120 §6 (&lt;auth/&gt;, then a
/// stream restart) and XEP-0388 SASL2 (&lt;authenticate/&gt; with a user agent, no restart). Both are offered, as
/// Prosody's mod_sasl2 does; the mechanisms, limits and checks are the negotiator's and so the same for both.
/// </summary>
public static class SaslProfiles
{
    /// <summary>XEP-0388 §2.3: the user agent's id is a stable identifier (normally a UUID); anything longer is refused.</summary>
    public const int MaxUserAgentIdLength = 128;
    /// <summary>The software and device names of a user agent are shown in login notices; anything longer is refused.</summary>
    public const int MaxUserAgentTextLength = 256;

    /// <summary>The SASL stream features: both profiles, and the XEP-0440 channel-binding types of the -PLUS mechanisms.</summary>
    public static IEnumerable<Element> Features(SaslNegotiator sasl)
    {
        yield return Mechanisms(new Element("mechanisms", Ns.Sasl), sasl);
        yield return Mechanisms(new Element("authentication", Ns.Sasl2), sasl).Add(Bind2.Inline());
        if (sasl.PlusOffered)
        {
            var bindings = new Element("sasl-channel-binding", Ns.SaslChannelBinding);
            bindings.AddChild("channel-binding").SetAttribute("type", SaslNegotiator.ChannelBindingType);
            yield return bindings;
        }
    }

    private static Element Mechanisms(Element feature, SaslNegotiator sasl)
    {
        foreach (var name in sasl.Mechanisms) feature.AddChild("mechanism").AddText(name);
        return feature;
    }

    /// <summary>RFC 6120 §6: &lt;auth/&gt;, &lt;response/&gt; or &lt;abort/&gt; in; &lt;challenge/&gt;, &lt;success/&gt; or &lt;failure/&gt; out.</summary>
    public static async ValueTask<(SaslStep Step, Element Reply)> HandleRfc6120Async(SaslNegotiator sasl, Element element)
    {
        var step = element.Name switch
        {
            "auth" => await sasl.StartAsync(element.GetAttribute("mechanism"), NullIfEmpty(element.Text.Trim())),
            "response" => await sasl.ContinueAsync(element.Text),
            "abort" => sasl.Abort(),
            _ => sasl.Refuse(SaslFailure.MalformedRequest, "unexpected SASL element"),
        };
        var reply = step.Outcome switch
        {
            SaslOutcome.Continue => WithData(new Element("challenge", Ns.Sasl), step.Data),
            SaslOutcome.Success => WithData(new Element("success", Ns.Sasl), step.Data),
            _ => Failure(Ns.Sasl, step),
        };
        return (step, reply);
    }

    /// <summary>
    /// XEP-0388: &lt;authenticate/&gt; (mechanism, optional &lt;initial-response/&gt; and &lt;user-agent/&gt;),
    /// &lt;response/&gt; or &lt;abort/&gt; in; &lt;challenge/&gt;, &lt;success/&gt; (with &lt;additional-data/&gt; and
    /// the &lt;authorization-identifier/&gt;) or &lt;failure/&gt; out.
    /// </summary>
    public static async ValueTask<(SaslStep Step, Element Reply)> HandleSasl2Async(SaslNegotiator sasl, Element element, Jid domain, string? streamFrom)
    {
        var step = element.Name switch
        {
            "authenticate" => ReadUserAgent(element, out var agent) is { } problem
                ? sasl.Refuse(SaslFailure.MalformedRequest, problem)
                : await sasl.StartAsync(element.GetAttribute("mechanism"), element.GetChild("initial-response", Ns.Sasl2)?.Text, agent, streamFrom),
            "response" => await sasl.ContinueAsync(element.Text),
            "abort" => sasl.Abort(),
            _ => sasl.Refuse(SaslFailure.MalformedRequest, "unexpected SASL2 element"),
        };
        Element reply;
        switch (step.Outcome)
        {
            case SaslOutcome.Continue:
                reply = WithData(new Element("challenge", Ns.Sasl2), step.Data);
                break;
            case SaslOutcome.Success:
                reply = new Element("success", Ns.Sasl2);
                if (step.Data is not null) WithData(reply.AddChild("additional-data"), step.Data);
                // A bare JID: the resource is bound afterwards, with RFC 6120 binding on this same stream.
                reply.AddChild("authorization-identifier").AddText(Jid.Create(sasl.User, domain.Domain).ToString());
                break;
            default:
                reply = Failure(Ns.Sasl2, step);
                break;
        }
        return (step, reply);
    }

    /// <summary>Reads &lt;user-agent/&gt;; returns why it is refused, or null.</summary>
    private static string? ReadUserAgent(Element authenticate, out UserAgent? agent)
    {
        agent = null;
        if (authenticate.GetChild("user-agent", Ns.Sasl2) is not { } element) return null;
        var id = element.GetAttribute("id");
        if (id is not null && (id.Trim().Length == 0 || id.Length > MaxUserAgentIdLength))
            return $"the user-agent id must be a stable identifier of 1 to {MaxUserAgentIdLength} characters";
        var software = CleanText(element.GetChild("software", Ns.Sasl2)?.Text);
        var device = CleanText(element.GetChild("device", Ns.Sasl2)?.Text);
        if (software?.Length > MaxUserAgentTextLength || device?.Length > MaxUserAgentTextLength)
            return $"the user-agent software and device may have at most {MaxUserAgentTextLength} characters";
        agent = new UserAgent(id, software, device);
        return null;
    }

    /// <summary>One line: runs of white space (line breaks included) become one space, so a name cannot fake a line of a notice.</summary>
    internal static string? CleanText(string? text)
    {
        if (text is null) return null;
        var clean = string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return clean.Length == 0 ? null : clean;
    }

    private static Element WithData(Element element, byte[]? data)
    {
        if (data is { Length: > 0 }) element.AddText(Convert.ToBase64String(data));
        return element;
    }

    /// <summary>&lt;failure/&gt; in the profile's namespace; the condition is always one of RFC 6120 §6.5 (XEP-0388 §2.6.2).</summary>
    private static Element Failure(string ns, SaslStep step)
    {
        var failure = new Element("failure", ns);
        failure.AddChild(step.Failure.ToElementName(), Ns.Sasl);
        if (step.Text is not null) failure.AddChild("text").SetAttribute("xml:lang", "en").AddText(step.Text);
        return failure;
    }

    private static string? NullIfEmpty(string text) => text.Length == 0 ? null : text;
}
