using System.Text;

namespace Candor.Xmpp.Sasl;

/// <summary>
/// XEP-0474 (SASL SCRAM Downgrade Protection): the server puts, as the 'd' attribute of its server-first message,
/// the hash of what it advertised — its SASL mechanisms and, when it announced any (XEP-0440), its channel-binding
/// types — so a client can see a list an attacker stripped. Both lists are sorted (ordinal) and joined with 0x1E
/// (record separator), the two lists with 0x1F (unit separator); the hash is the SCRAM mechanism's, in base64.
/// </summary>
public static class ScramDowngradeProtection
{
    public const char Attribute = 'd';

    public static string Hash(ScramAlgorithm algorithm, IEnumerable<string> mechanisms, IEnumerable<string>? channelBindingTypes)
    {
        var text = new StringBuilder(string.Join('\x1e', mechanisms.Order(StringComparer.Ordinal)));
        if (channelBindingTypes is not null)
            text.Append('\x1f').Append(string.Join('\x1e', channelBindingTypes.Order(StringComparer.Ordinal)));
        return Convert.ToBase64String(algorithm.Hash(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
