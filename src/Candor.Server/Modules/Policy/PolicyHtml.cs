using System.Text;
using System.Text.Encodings.Web;
using Candor.Server.Hosting;

namespace Candor.Server.Modules.Policy;

/// <summary>The published policy as a page a person reads; the same content as the JSON, whose digest it shows.</summary>
internal static class PolicyHtml
{
    public static string Render(PublishedPolicy policy, ServerOptions options)
    {
        var s = new StringBuilder();
        var domain = E(options.Domain);
        s.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
            .Append("<title>Policy of ").Append(domain).Append("</title>\n")
            .Append("<style>body{font-family:system-ui,sans-serif;max-width:50em;margin:2em auto;padding:0 1em;line-height:1.5}")
            .Append("code,.digest{font-family:ui-monospace,monospace}.digest{word-break:break-all}")
            .Append("table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}")
            .Append(".reject{color:#a00}.allow{color:#070}</style>\n</head>\n<body>\n");
        s.Append("<h1>Policy of ").Append(domain).Append("</h1>\n");
        s.Append("<p>Version <strong>").Append(E(policy.Version)).Append("</strong>. SHA-256 of the machine-readable document ")
            .Append("(<a href=\"policy.json\">policy.json</a>, also announced in the server's service discovery): ")
            .Append("<span class=\"digest\">").Append(policy.Digest).Append("</span></p>\n");

        s.Append("<h2>Content rules</h2>\n");
        s.Append("<p>").Append(E(PublishedPolicy.Statements.Refusals)).Append("</p>\n");
        s.Append("<p>").Append(E(PublishedPolicy.Statements.Blocking)).Append("</p>\n");
        if (policy.Definition.Rules.Count == 0)
        {
            s.Append("<p>There are no content rules: every message is delivered as sent.</p>\n");
        }
        else
        {
            s.Append("<table>\n<tr><th>Rule</th><th>Action</th><th>Applies to</th><th>Matches</th></tr>\n");
            foreach (var rule in policy.Definition.Rules)
            {
                var action = PolicyRule.Name(rule.Action);
                s.Append("<tr><td><strong>").Append(E(rule.Id)).Append("</strong><br>").Append(E(rule.Description)).Append("</td>")
                    .Append("<td class=\"").Append(action).Append("\">").Append(action).Append("</td>")
                    .Append("<td>").Append(rule.Whose == PolicyWhose.Strangers ? "senders not in the recipient's contacts" : "everyone")
                    .Append("; ").Append(string.Join(" and ", PolicyRule.Names(rule.Where).Select(n => "message " + n))).Append("</td><td>");
                if (rule.Phrases.Count > 0)
                    s.Append(rule.Match == PhraseMatch.Word ? "whole words: " : "anywhere: ")
                        .Append(string.Join(", ", rule.Phrases.Select(p => "<code>" + E(p) + "</code>")));
                if (rule.Regex.Count > 0)
                    s.Append(rule.Phrases.Count > 0 ? "<br>" : "").Append("patterns: ")
                        .Append(string.Join(", ", rule.Regex.Select(p => "<code>" + E(p) + "</code>")));
                if (rule.IgnoreSeparators) s.Append("<br>(ignoring spaces and punctuation between letters)");
                s.Append("</td></tr>\n");
            }
            s.Append("</table>\n");
        }
        s.Append("<p>").Append(E(PublishedPolicy.Statements.Normalization)).Append("</p>\n");
        s.Append("<h2>Encrypted messages</h2>\n<p>").Append(E(PublishedPolicy.Statements.Encrypted)).Append("</p>\n");
        s.Append("<h2>No copies</h2>\n<p>").Append(E(PublishedPolicy.Statements.Copies)).Append("</p>\n");
        s.Append("<h2>Other servers and push notifications</h2>\n<p>").Append(E(PublishedPolicy.Statements.RemoteSenders)).Append("</p>\n<p>")
            .Append(E(PublishedPolicy.Statements.Push)).Append("</p>\n");

        s.Append("<h2>What is stored, and for how long</h2>\n<table>\n<tr><th>Data</th><th>Kept</th></tr>\n");
        foreach (var (data, kept) in PublishedPolicy.Statements.Retention(options))
            s.Append("<tr><td>").Append(E(data)).Append("</td><td>").Append(E(kept)).Append("</td></tr>\n");
        s.Append("</table>\n<p>").Append(E(PublishedPolicy.Statements.Operators)).Append("</p>\n");

        s.Append("<h2>What is logged</h2>\n<p>").Append(E(PublishedPolicy.Statements.LogDestination)).Append("</p>\n<ul>\n");
        foreach (var item in PublishedPolicy.Statements.Logged) s.Append("<li>").Append(E(item)).Append("</li>\n");
        s.Append("</ul>\n<p>Never logged:</p>\n<ul>\n");
        foreach (var item in PublishedPolicy.Statements.NeverLogged) s.Append("<li>").Append(E(item)).Append("</li>\n");
        s.Append("</ul>\n");

        s.Append("<h2>Access</h2>\n<ul>\n");
        foreach (var item in new[]
                 {
                     PublishedPolicy.Statements.Authentication(options), PublishedPolicy.Statements.Transport(options),
                     PublishedPolicy.Statements.Deletion, PublishedPolicy.Statements.Export,
                 })
            s.Append("<li>").Append(E(item)).Append("</li>\n");
        s.Append("</ul>\n</body>\n</html>\n");
        return s.ToString();
    }

    private static string E(string text) => HtmlEncoder.Default.Encode(text);
}
