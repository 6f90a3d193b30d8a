using Candor.Server.Core;
using Candor.Server.Hosting;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// The published content policy (issue 6), enforced in the open: messages to local accounts are matched
/// against the rules; a rejected one is answered with policy-violation naming the rule, and nothing else
/// happens to it (promises 1 and 2). The policy is served at /.well-known/candor/policy (JSON, or HTML for
/// browsers) and its SHA-256 announced in the server's disco#info, with the XEP-0504 data policy form; an account
/// asking to add a contact on another server is told that server's data policy (<see cref="RemotePolicy"/>).
/// </summary>
public sealed partial class PolicyModule : IModule
{
    public const string WellKnownPath = "/.well-known/candor/policy";
    public const string DataPolicyFormType = "urn:xmpp:data-policy:0";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0128", "1.0.1", $"{PublishedPolicy.FormatUri} form: policy version, SHA-256 and URL"),
        new("XEP-0504", "0.1.0", "data policy form in the server's disco#info; a remote server's form shown to an account that asks to add a contact there"),
    ];

    /// <summary>End-to-end encryption payloads; a message carrying one has only a fallback notice as its body.</summary>
    private static readonly (string Name, string Ns)[] EncryptedPayloads =
    [
        ("encrypted", "eu.siacs.conversations.axolotl"), // OMEMO (XEP-0384 0.3, what clients deploy)
        ("encrypted", "urn:xmpp:omemo:2"),              // OMEMO 2
        ("openpgp", "urn:xmpp:openpgp:0"),              // XEP-0373
        ("x", "jabber:x:encrypted"),                   // XEP-0027
        ("encryption", "urn:xmpp:eme:0"),               // XEP-0380 explicit encryption marker
    ];

    public void Register(XmppServer server)
    {
        var logger = server.LoggerFactory.CreateLogger("Candor.Policy");
        PolicyService policy;
        try
        {
            policy = new PolicyService(server.Options, logger);
        }
        catch (PolicyException e)
        {
            // A bad policy file stops the start: running without the rules the operator published would be worse.
            throw new OptionsException(e.Message);
        }
        server.Policy = policy;

        // Priority.Filter: before delivery and before offline storage, so a refused message is stored nowhere.
        // At the delivery hooks rather than PreMessage because "strangers" depends on the recipient's roster.
        server.Hooks.MessageToBare.Add(ev => FilterAsync(server, policy, logger, ev), Priority.Filter);
        server.Hooks.MessageToFull.Add(ev => FilterAsync(server, policy, logger, ev), Priority.Filter);
        server.Disco.ServerExtensions.Add(() => PolicyForm(policy));
        server.Disco.ServerExtensions.Add(() => DataPolicyForm(server.Options, policy));
        // Observe: tells the account about the contact's server and lets the subscription request go on.
        server.Hooks.PrePresence.Add(ev => RemotePolicy.OnPresenceAsync(server, ev), Priority.Observe);
    }

    private static ValueTask<bool> FilterAsync(XmppServer server, PolicyService policy, ILogger logger, StanzaEvent ev)
    {
        // Errors quote the stanza they answer back to its sender; the server's own messages are not content.
        if (ev.Type == "error" || ev.From.Local is null && ev.From.Domain == server.Domain.Domain) return ValueTask.FromResult(false);
        var deciding = policy.RefusingRuleAsync(ev.Stanza, static s => IsStrangerAsync(s.server, s.ev), (server, ev));
        // Most messages match no rule: decided without a state machine.
        if (!deciding.IsCompletedSuccessfully) return RefuseAsync(server, logger, ev, deciding);
        return deciding.Result is { } rule ? RefuseAsync(server, logger, ev, ValueTask.FromResult<PolicyRule?>(rule)) : ValueTask.FromResult(false);
    }

    private static async ValueTask<bool> RefuseAsync(XmppServer server, ILogger logger, StanzaEvent ev, ValueTask<PolicyRule?> deciding)
    {
        var refusing = await deciding;
        if (refusing is null) return false;
        Log.Refused(logger, refusing.Id, ev.From.Bare, ev.To.Bare);
        server.Metrics.PolicyRefusal(refusing.Id);
        await ev.ReplyErrorAsync(StanzaError.PolicyViolation, refusing.RejectionText);
        return true;
    }

    /// <summary>Whether the body is a fallback notice beside an end-to-end encrypted payload (or OTR ciphertext).</summary>
    public static bool IsEndToEndEncrypted(Element message)
    {
        foreach (var child in message.Elements)
        {
            foreach (var (name, ns) in EncryptedPayloads)
                if (child.Is(name, ns)) return true;
            // OTR carries its ciphertext in the body itself.
            if (child.Is("body", Ns.Client) && child.Text.StartsWith("?OTR", StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>A sender the recipient has not added to their roster (a pending request does not count).</summary>
    private static async ValueTask<bool> IsStrangerAsync(XmppServer server, StanzaEvent ev)
    {
        if (ev.From.Local == ev.To.Local && ev.From.Domain == ev.To.Domain) return false;
        var item = await server.Rosters.GetAsync(ev.To.Local!, ev.From);
        return item is null || item.Hidden;
    }

    /// <summary>The public URL of the JSON document; null when the server serves no HTTP.</summary>
    public static string? PublicUrl(ServerOptions options, int httpPort) =>
        options.PolicyUrl ?? (httpPort > 0 ? $"http://{options.Domain}:{httpPort}{WellKnownPath}" : null);

    /// <summary>The policy in force in one line: version, SHA-256 digest and where it is published.</summary>
    public static string Describe(PolicyService policy)
    {
        var published = policy.Current.Published;
        var where = policy.Url is { } url ? $"published at {url} (for reading: {url}.html)" : "not served over HTTP by this server";
        return $"Policy version {published.Version}, SHA-256 {published.Digest}, {where}.";
    }

    private static Element PolicyForm(PolicyService policy)
    {
        var published = policy.Current.Published;
        var form = DataForms.Result(PublishedPolicy.FormatUri);
        DataForms.Field(form, "version", published.Version);
        DataForms.Field(form, "sha-256", published.Digest);
        if (policy.Url is { } url)
        {
            DataForms.Field(form, "url", url);
            DataForms.Field(form, "html-url", url + ".html");
        }
        return form;
    }

    /// <summary>XEP-0504, filled in from what the code does (see PublishedPolicy.Statements for the long form).</summary>
    private static Element DataPolicyForm(ServerOptions options, PolicyService policy)
    {
        var form = DataForms.Result(DataPolicyFormType);
        // PLAIN is accepted inside TLS, so the server can see a password while checking it: "plain", not "hidden".
        DataForms.Field(form, "auth_data", "plain", "list-single");
        // Offline messages wait until delivered, other data until changed or removed: only the archive is purged by age (extra_info).
        DataForms.Field(form, "data_retention", "infinite", "text-single");
        DataForms.Field(form, "data_deletion", "true", "boolean");
        DataForms.Field(form, "encryption_at_rest", "true", "boolean");
        DataForms.Field(form, "data_export", "true", "boolean");
        DataForms.Field(form, "access_policy", "admins", "list-multi");
        DataForms.Field(form, "full_erasure", "true", "boolean");
        var extra = DataForms.Field(form, "extra_info", null, "text-multi");
        // Uploads and calls, when offered, in the same words as the published policy's retention list.
        var filesAndCalls = new (string Data, string Kept)?[]
            {
                string.IsNullOrEmpty(options.UploadDomain) ? null : PublishedPolicy.Statements.Uploads(options),
                string.IsNullOrEmpty(options.TurnHost) ? null : PublishedPolicy.Statements.Calls(options),
            }
            .OfType<(string Data, string Kept)>()
            .Select(s => char.ToUpperInvariant(s.Data[0]) + s.Data[1..] + ": " + s.Kept + ".");
        foreach (var line in new[]
                 {
                     "Passwords are stored only as salted SCRAM keys; SCRAM is offered first, PLAIN is accepted only inside TLS"
                     + (options.AllowPlaintext ? " (WARNING: this server also allows it without TLS)." : "."),
                     PublishedPolicy.Statements.Transport(options),
                     "Offline messages are kept until delivered, at most " + options.MaxOfflineMessages + " per account.",
                     $"Archived messages (XEP-0313) are kept {options.ArchiveRetentionDays} days ({options.ArchiveRetentionDays * 24} hours), then deleted; "
                     + "each account chooses what is archived and can delete its archive (ad-hoc command \"Delete my message history\").",
                     PublishedPolicy.Statements.Operators,
                     PublishedPolicy.Statements.Encrypted,
                     PublishedPolicy.Statements.Push,
                     "Content rules, retention and logging: " + (policy.Url ?? "see the server's policy (no HTTP listener)"),
                 }.Concat(filesAndCalls))
            extra.AddChild("value").AddText(line);
        return form;
    }

    /// <summary>Serves the published policy. <paramref name="httpPort"/> is read when asked: the port is known once listening.</summary>
    public static void MapEndpoints(IEndpointRouteBuilder app, XmppServer server, Func<int> httpPort)
    {
        var policy = server.Policy;
        policy.UrlResolver = () => PublicUrl(server.Options, httpPort());
        app.MapGet(WellKnownPath, context => Serve(context, policy, PrefersHtml(context.Request) ? "html" : "json"));
        app.MapGet(WellKnownPath + ".json", context => Serve(context, policy, "json"));
        app.MapGet(WellKnownPath + ".html", context => Serve(context, policy, "html"));
    }

    private static Task Serve(HttpContext context, PolicyService policy, string format)
    {
        var published = policy.Current.Published;
        var response = context.Response;
        response.Headers.ETag = $"\"sha256-{published.Digest}\"";
        response.Headers.Vary = "Accept";
        response.Headers.CacheControl = "no-cache";
        response.Headers.AccessControlAllowOrigin = "*";
        if (format == "html")
        {
            response.ContentType = "text/html; charset=utf-8";
            return response.WriteAsync(published.Html);
        }
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = published.Json.Length;
        return response.Body.WriteAsync(published.Json).AsTask();
    }

    /// <summary>HTML when the client ranks text/html above JSON (browsers); JSON otherwise, including for */*.</summary>
    public static bool PrefersHtml(HttpRequest request)
    {
        double html = 0, json = 0;
        foreach (var accept in request.GetTypedHeaders().Accept)
        {
            var quality = accept.Quality ?? 1;
            var type = accept.MediaType.Value ?? "";
            if (type is "text/html" or "application/xhtml+xml") html = Math.Max(html, quality);
            else if (type is "application/json" or "application/*") json = Math.Max(json, quality);
            else if (type == "*/*")
            {
                html = Math.Max(html, quality * 0.99); // a wildcard is a weaker wish than a named type
                json = Math.Max(json, quality);
            }
        }
        return html > json;
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "Message from {From} to {To} refused by policy rule {Rule}")]
        public static partial void Refused(ILogger logger, string rule, Jid from, Jid to);
    }
}

/// <summary>Result forms of XEP-0004 as XEP-0128 extends disco#info with them, and the fields of forms.</summary>
internal static class DataForms
{
    /// <summary>The first value of a form's field, or null.</summary>
    public static string? Value(Element form, string var) =>
        form.Elements.FirstOrDefault(f => f.Is("field", Ns.DataForms) && f.GetAttribute("var") == var)?.GetChildText("value", Ns.DataForms);

    public static Element Result(string formType)
    {
        var form = new Element("x", Ns.DataForms).SetAttribute("type", "result");
        Field(form, "FORM_TYPE", formType, "hidden");
        return form;
    }

    public static Element Field(Element form, string var, string? value, string? type = null)
    {
        var field = form.AddChild("field").SetAttribute("var", var).SetAttribute("type", type);
        if (value is not null) field.AddChild("value").AddText(value);
        return field;
    }
}
