using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Candor.Server.Hosting;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// The one published policy (promise 5 of DESIGN.md): the content rules, what is stored and for how long,
/// and what the server logs, as one JSON document whose exact bytes are served and whose SHA-256 is
/// announced in disco. Everything here is derived from the policy file and the server's options, never
/// from the clock, so the same configuration always yields the same digest.
/// <para>
/// The statements about storage and logging describe the code as it is: when a feature that stores or logs
/// something lands, this file must say so (the tests read it next to the modules).
/// </para>
/// </summary>
public sealed class PublishedPolicy
{
    public const string FormatUri = "urn:xmpp:candor:policy:0";

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        // Phrases in any script stay readable; the document is served as application/json, never inlined in HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly Lazy<string> _html;

    private PublishedPolicy(PolicyDefinition definition, string version, byte[] json, ServerOptions options)
    {
        Definition = definition;
        Version = version;
        Json = json;
        Digest = Convert.ToHexStringLower(SHA256.HashData(json));
        _html = new Lazy<string>(() => PolicyHtml.Render(this, options));
    }

    public PolicyDefinition Definition { get; }
    /// <summary>The file's "version", or "sha256-" and the first 12 hex digits of the rules' own digest.</summary>
    public string Version { get; }
    /// <summary>The exact bytes served at /.well-known/candor/policy.</summary>
    public byte[] Json { get; }
    /// <summary>SHA-256 of <see cref="Json"/>, lower-case hex.</summary>
    public string Digest { get; }
    public string Html => _html.Value;

    public static PublishedPolicy Create(PolicyDefinition definition, ServerOptions options)
    {
        var rules = RulesJson(definition);
        var version = definition.Version ?? "sha256-" + Convert.ToHexStringLower(SHA256.HashData(rules))[..12];
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("format", FormatUri);
            w.WriteString("server", options.Domain);
            w.WriteString("version", version);

            w.WriteStartObject("content");
            w.WriteStartArray("inspected");
            w.WriteStringValue("message body");
            w.WriteStringValue("message subject");
            w.WriteEndArray();
            w.WriteString("normalization", Statements.Normalization);
            w.WriteString("refusals", Statements.Refusals);
            w.WriteString("copies", Statements.Copies);
            w.WriteString("blocking", Statements.Blocking);
            w.WriteString("encryptedContent", Statements.Encrypted);
            w.WriteString("remoteSenders", Statements.RemoteSenders);
            w.WriteString("pushNotifications", Statements.Push);
            w.WriteNumber("regexTimeoutMilliseconds", (int)PolicyMatcher.RegexTimeout.TotalMilliseconds);
            w.WriteEndObject();

            w.WritePropertyName("rules");
            WriteRules(w, definition);

            w.WriteStartArray("retention");
            foreach (var (data, kept) in Statements.Retention(options))
            {
                w.WriteStartObject();
                w.WriteString("data", data);
                w.WriteString("kept", kept);
                w.WriteBoolean("encryptedAtRest", true); // every store is sealed (AES-256-GCM, docs/SECURITY.md)
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartObject("logging");
            w.WriteString("where", Statements.LogDestination);
            w.WriteStartArray("logged");
            foreach (var item in Statements.Logged) w.WriteStringValue(item);
            w.WriteEndArray();
            w.WriteStartArray("neverLogged");
            foreach (var item in Statements.NeverLogged) w.WriteStringValue(item);
            w.WriteEndArray();
            w.WriteEndObject();

            w.WriteStartObject("access");
            w.WriteString("authentication", Statements.Authentication(options));
            w.WriteString("transport", Statements.Transport(options));
            w.WriteString("operators", Statements.Operators);
            w.WriteString("deletion", Statements.Deletion);
            w.WriteString("export", Statements.Export);
            w.WriteEndObject();

            w.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
        return new PublishedPolicy(definition, version, stream.ToArray(), options);
    }

    private static byte[] RulesJson(PolicyDefinition definition)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, WriterOptions)) WriteRules(w, definition);
        return stream.ToArray();
    }

    private static void WriteRules(Utf8JsonWriter w, PolicyDefinition definition)
    {
        w.WriteStartArray();
        foreach (var rule in definition.Rules)
        {
            w.WriteStartObject();
            w.WriteString("id", rule.Id);
            w.WriteString("description", rule.Description);
            w.WriteString("action", PolicyRule.Name(rule.Action));
            w.WriteString("whose", PolicyRule.Name(rule.Whose));
            w.WriteStartArray("where");
            foreach (var field in PolicyRule.Names(rule.Where)) w.WriteStringValue(field);
            w.WriteEndArray();
            if (rule.Phrases.Count > 0)
            {
                w.WriteString("match", PolicyRule.Name(rule.Match));
                w.WriteStartArray("phrases");
                foreach (var phrase in rule.Phrases) w.WriteStringValue(phrase);
                w.WriteEndArray();
            }
            if (rule.Regex.Count > 0)
            {
                w.WriteStartArray("regex");
                foreach (var pattern in rule.Regex) w.WriteStringValue(pattern);
                w.WriteEndArray();
            }
            w.WriteBoolean("ignoreSeparators", rule.IgnoreSeparators);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>The sentences the document is made of, kept true to the code they describe.</summary>
    public static class Statements
    {
        public const string Normalization =
            "Rules match normalized text: Unicode NFKC (full-width and half-width forms, ligatures and other compatibility "
            + "characters fold to plain letters), invisible format characters removed (zero-width spaces and joiners, soft "
            + "hyphens, variation selectors), full case folding (also ß to ss and final sigma to sigma). Rules with "
            + "ignoreSeparators also ignore everything but letters and digits (b.a.d matches bad). Phrases with match 'word' "
            + "must not be part of a longer word, except in scripts written without spaces (Chinese, Japanese, Thai, ...).";

        public const string Refusals =
            "A message a reject rule matches is not delivered, and its sender receives an error "
            + "(policy-violation) naming the rule and its description. An allow rule that matches wins over reject rules. "
            + "Nothing is refused without telling the sender.";

        public const string Blocking =
            "An account can block addresses (XEP-0191). A blocked sender's messages and requests are not delivered and "
            + "are answered with service-unavailable, the answer an account that is offline or does not exist gives, so "
            + "the block itself is not revealed; its presence (including subscription requests) is dropped without an "
            + "answer, as XEP-0191 requires. The blocking account is told (not-acceptable, blocked) when it writes to an "
            + "address it blocked.";

        public const string Copies =
            "No rule stores, forwards or reports message content anywhere: a refused message is answered and dropped. "
            + "The server log records that a rule refused a message (rule, sender and recipient addresses), never its text. "
            + "A message sent to the server's own address is read as a command (sessions, end others, policy, help), answered "
            + "and dropped: it is not stored or forwarded.";

        public const string RemoteSenders =
            "Messages from accounts on other servers (federation) go through the same rules, blocking and refusals as "
            + "messages between accounts of this server: the remote sender receives the same error.";

        public const string Push =
            "Push notifications (XEP-0357) go only to the push service a client names when it turns them on, and only "
            + "while that client is not connected: by default a notification says that a message arrived and how many, "
            + "never who sent it or what it says; a client may ask for the sender and the text to be included, for that "
            + "client alone. A client turns them off at any time; each notification is sent once, never retried or stored.";

        public const string Encrypted =
            "End-to-end encrypted content (OMEMO, OpenPGP, OTR) cannot be read by this server and is not inspected. "
            + "A message that carries an end-to-end encrypted payload is delivered without checking its plain-text body, "
            + "which is only a notice written by the sending client. No rule refuses a message for being encrypted.";

        public static IEnumerable<(string Data, string Kept)> Retention(ServerOptions options) =>
        [
            ("offline messages", $"until delivered to the recipient's next session, then deleted; at most {options.MaxOfflineMessages} per account (beyond that the sender receives an error); no time limit"),
            ("message archive (XEP-0313: one-to-one chat and normal messages with content, a copy for the sender and one for the recipient, so that an account's clients can sync history)",
                $"{options.ArchiveRetentionDays} days, then deleted by a sweep that runs every hour; archived by default: {ArchiveDefault(options.ArchiveDefault)}; "
                + "each account can change what is archived (XEP-0441 preferences: always, roster or never, and per-contact lists), and delete its whole archive "
                + "(ad-hoc command \"Delete my message history\"); an operator deletion (candor user purge-archive) is announced to the account"),
            ("chat room archives (XEP-0313 on the room's address: the groupchat messages of rooms whose owner keeps archiving on, and moderators' retractions, which replace the retracted message)",
                $"{options.MucArchiveRetentionDays} days, then deleted by a sweep that runs every hour; new rooms are archived {(options.MucArchiveByDefault ? "by default" : "only when their owner turns it on")}; "
                + "each room says in its disco#info whether it is archived and for how long, and tells everyone entering (status 170); "
                + "the archive is deleted with the room (destroyed, or a temporary room left empty)"),
            ("roster, vCard, private XML storage and PEP items (XEP-0163: OMEMO device lists and public keys, avatars, nicknames, bookmarks)", "until the account changes them or the account is removed"),
            ("passwords", "only as salted SCRAM-SHA-1 and SCRAM-SHA-256 keys (RFC 5802), never the password itself, until changed or the account is removed"),
            ("login history (each client that accessed an account: resource, last IP address, first and last use, SASL mechanism, TLS version, and the client software as the client names it: its SASL2 user agent, its software version answer with the operating system it states, or its caps node)",
                $"{options.LoginHistoryDays} days after the client's last use, then deleted; the account can list and revoke its clients at any time (XEP-0494)"),
            ("push notification registrations (XEP-0357: the push service's address and node, the options the client gave it, and whether sender and text may be included)",
                "until the client turns them off or the account is removed"),
            ("login notices for an account with no session online", "until the account's next login, then deleted"),
            ("time of each account's last logout", "until the next logout replaces it or the account is removed; told (XEP-0012 Last Activity) only to the account itself and to contacts subscribed to its presence"),
            .. string.IsNullOrEmpty(options.UploadDomain) ? Array.Empty<(string, string)>() : [Uploads(options)],
            .. string.IsNullOrEmpty(options.TurnHost) ? Array.Empty<(string, string)>() : [Calls(options)],
        ];

        public static (string Data, string Kept) Uploads(ServerOptions options) =>
            ("files uploaded with HTTP File Upload (XEP-0363), with their name, type, size, uploading account and date; sealed on disk (AES-256-GCM); anyone holding a file's URL can download it",
                $"{options.UploadRetentionDays} days after the upload, then deleted; at most {options.UploadMaxBytes} bytes per file"
                + (options.UploadQuotaBytes > 0 ? $" and {options.UploadQuotaBytes} bytes per account" : ""));

        public static (string Data, string Kept) Calls(ServerOptions options) =>
            ("calls (Jingle audio and video): this server only hands out STUN/TURN addresses and time-limited relay credentials (XEP-0215); call media goes between the clients or through the relay at " + options.TurnHost + " and never through this server, which cannot see or record it",
                $"nothing is stored: credentials are computed on request and expire after {options.TurnTtlSeconds} seconds");

        private static string ArchiveDefault(string setting) => setting switch
        {
            "always" => "every correspondent",
            "roster" => "only contacts in the account's roster",
            _ => "nothing (archiving is off until an account asks for it)",
        };

        public const string LogDestination =
            "The server process's standard output (level Information by default). Candor writes no log files and keeps no "
            + "logs itself: how long they are kept is the operator's log system's choice.";

        public static readonly string[] Logged =
        [
            "logins: account name, IP address and SASL mechanism (Information)",
            "failed logins (wrong password): IP address and reason (Information)",
            "SASL negotiations that did not work out (mechanism, channel binding, syntax; not a wrong password): IP address and reason (Debug, not shown by default)",
            "sessions bound and ended: full address (account and resource); IP address when bound (Information)",
            "stream errors sent: IP address and condition (Information)",
            "lost connections: IP address (Debug, not shown by default)",
            "messages refused by a policy rule: rule id, sender and recipient addresses (Information)",
            "policy loads and changes: version and SHA-256 digest (Information)",
            "uploads stored, refused or not completed: account name, IP address, size and reason; never a file's name, URL or content (Information)",
            "outside the log, the login history listed under retention (announced to the account itself)",
        ];

        public static readonly string[] NeverLogged =
        [
            "message bodies, subjects or any other stanza content",
            "passwords or authentication exchanges",
        ];

        public static string Authentication(ServerOptions options) =>
            "SCRAM-SHA-256(-PLUS) and SCRAM-SHA-1(-PLUS) are offered; PLAIN is also accepted inside TLS, in which case the "
            + "server sees the password while checking it" + (options.AllowPlaintext ? "; WARNING: this server also allows PLAIN without TLS" : "") + ".";

        public static string Transport(ServerOptions options) =>
            options.AllowPlaintext
                ? "WARNING: this server allows client connections without TLS (benchmark mode)."
                : "Client connections require TLS 1.2 or 1.3 (STARTTLS or direct TLS)."
                  + (options.S2sPort >= 0 ? " Connections to other servers (federation) use TLS too, and each server's name is checked (certificate or dialback)." : " This server does not federate with other servers.");

        public const string Operators =
            "What the server stores for accounts (offline messages, message archives, rosters, vCards, PEP items, uploaded files) is sealed at rest "
            + "with AES-256-GCM under a key kept outside the database: a copy of the database shows no message, contact or file. "
            + "The operator, who holds the key, can open it; end-to-end encrypted messages (OMEMO) stay unreadable to the operator as well.";

        public const string Deletion =
            "An account can remove itself and everything stored for it (XEP-0077); roster items and vCard can be changed or removed at any time; "
            + "the message archive can be deleted by the account (ad-hoc command \"Delete my message history\").";

        public const string Export =
            "An account can export what the server keeps for it (roster, vCard, private XML, PEP items, offline messages, message archive) "
            + "as a XEP-0227 file with the ad-hoc command \"Export my data\"; each export is recorded in the operator log.";
    }
}
