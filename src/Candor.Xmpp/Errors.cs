using Candor.Xml;

namespace Candor.Xmpp;

/// <summary>Stream error conditions of RFC 6120 §4.9.3, written as their element names.</summary>
public static class StreamErrors
{
    public const string BadFormat = "bad-format";
    public const string BadNamespacePrefix = "bad-namespace-prefix";
    public const string Conflict = "conflict";
    public const string ConnectionTimeout = "connection-timeout";
    public const string HostUnknown = "host-unknown";
    public const string ImproperAddressing = "improper-addressing";
    public const string InternalServerError = "internal-server-error";
    public const string InvalidFrom = "invalid-from";
    public const string InvalidNamespace = "invalid-namespace";
    public const string InvalidXml = "invalid-xml";
    public const string NotAuthorized = "not-authorized";
    public const string NotWellFormed = "not-well-formed";
    public const string PolicyViolation = "policy-violation";
    public const string RemoteConnectionFailed = "remote-connection-failed";
    public const string ResourceConstraint = "resource-constraint";
    public const string RestrictedXml = "restricted-xml";
    public const string SystemShutdown = "system-shutdown";
    public const string UndefinedCondition = "undefined-condition";
    public const string UnsupportedEncoding = "unsupported-encoding";
    public const string UnsupportedStanzaType = "unsupported-stanza-type";
    public const string UnsupportedVersion = "unsupported-version";

    public static string FromXml(XmlErrorCondition condition) => condition switch
    {
        XmlErrorCondition.RestrictedXml => RestrictedXml,
        XmlErrorCondition.PolicyViolation => PolicyViolation,
        XmlErrorCondition.UnsupportedEncoding => UnsupportedEncoding,
        _ => NotWellFormed,
    };

    public static Element Create(string condition, string? text = null)
    {
        var error = new Element("error", Ns.Stream);
        error.AddChild(condition, Ns.Streams);
        if (text is not null) error.AddChild("text", Ns.Streams).SetAttribute("xml:lang", "en").AddText(text);
        return error;
    }
}

/// <summary>A stanza error (RFC 6120 §8.3): the condition element name and its default type.</summary>
public readonly record struct StanzaError(string Condition, string Type)
{
    public static readonly StanzaError BadRequest = new("bad-request", "modify");
    public static readonly StanzaError Conflict = new("conflict", "cancel");
    public static readonly StanzaError FeatureNotImplemented = new("feature-not-implemented", "cancel");
    public static readonly StanzaError Forbidden = new("forbidden", "auth");
    public static readonly StanzaError InternalServerError = new("internal-server-error", "wait");
    public static readonly StanzaError Gone = new("gone", "cancel");
    public static readonly StanzaError ItemNotFound = new("item-not-found", "cancel");
    public static readonly StanzaError JidMalformed = new("jid-malformed", "modify");
    public static readonly StanzaError NotAcceptable = new("not-acceptable", "modify");
    public static readonly StanzaError NotAllowed = new("not-allowed", "cancel");
    public static readonly StanzaError NotAuthorized = new("not-authorized", "auth");
    public static readonly StanzaError PolicyViolation = new("policy-violation", "modify");
    public static readonly StanzaError RecipientUnavailable = new("recipient-unavailable", "wait");
    public static readonly StanzaError RegistrationRequired = new("registration-required", "auth");
    public static readonly StanzaError RemoteServerNotFound = new("remote-server-not-found", "cancel");
    public static readonly StanzaError RemoteServerTimeout = new("remote-server-timeout", "wait");
    public static readonly StanzaError ResourceConstraint = new("resource-constraint", "wait");
    public static readonly StanzaError ServiceUnavailable = new("service-unavailable", "cancel");
    public static readonly StanzaError UndefinedCondition = new("undefined-condition", "cancel");
    public static readonly StanzaError UnexpectedRequest = new("unexpected-request", "wait");
}
