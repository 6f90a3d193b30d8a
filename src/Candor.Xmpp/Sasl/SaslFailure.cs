namespace Candor.Xmpp.Sasl;

/// <summary>The SASL failure conditions of RFC 6120 §6.5.</summary>
public enum SaslFailure
{
    Aborted,
    AccountDisabled,
    CredentialsExpired,
    EncryptionRequired,
    IncorrectEncoding,
    InvalidAuthzid,
    InvalidMechanism,
    MalformedRequest,
    MechanismTooWeak,
    NotAuthorized,
    TemporaryAuthFailure,
}

public static class SaslFailureNames
{
    public static string ToElementName(this SaslFailure f) => f switch
    {
        SaslFailure.Aborted => "aborted",
        SaslFailure.AccountDisabled => "account-disabled",
        SaslFailure.CredentialsExpired => "credentials-expired",
        SaslFailure.EncryptionRequired => "encryption-required",
        SaslFailure.IncorrectEncoding => "incorrect-encoding",
        SaslFailure.InvalidAuthzid => "invalid-authzid",
        SaslFailure.InvalidMechanism => "invalid-mechanism",
        SaslFailure.MalformedRequest => "malformed-request",
        SaslFailure.MechanismTooWeak => "mechanism-too-weak",
        SaslFailure.NotAuthorized => "not-authorized",
        SaslFailure.TemporaryAuthFailure => "temporary-auth-failure",
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, null),
    };
}

public sealed class SaslException(SaslFailure failure, string message) : Exception(message)
{
    public SaslFailure Failure { get; } = failure;
}
