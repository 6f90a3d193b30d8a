using System.Text.Json.Serialization;

namespace Candor.Server.Modules.Roster;

/// <summary>The subscription part of RFC 6121's roster item state.</summary>
public enum Subscription { None, To, From, Both }

/// <summary>
/// One contact in an account's roster with the full RFC 6121 state: subscription, pending out (ask),
/// pending in, and pre-approval. Items that exist only because of an unanswered inbound request are
/// <see cref="Hidden"/>: RFC 6121 §3.1.3 keeps them out of roster results and pushes.
/// </summary>
public sealed class RosterItem
{
    public required string Jid { get; init; }
    public string? Name { get; set; }
    public Subscription Subscription { get; set; }
    public bool PendingOut { get; set; }
    public bool PendingIn { get; set; }
    public bool Approved { get; set; }
    public bool Hidden { get; set; }
    public List<string> Groups { get; set; } = [];

    [JsonIgnore] public bool SubscribedTo => Subscription is Subscription.To or Subscription.Both;
    [JsonIgnore] public bool SubscribedFrom => Subscription is Subscription.From or Subscription.Both;

    public void SetTo(bool value) => Subscription = Combine(value, SubscribedFrom);
    public void SetFrom(bool value) => Subscription = Combine(SubscribedTo, value);

    private static Subscription Combine(bool to, bool from) =>
        (to, from) switch
        {
            (true, true) => Subscription.Both,
            (true, false) => Subscription.To,
            (false, true) => Subscription.From,
            _ => Subscription.None,
        };

    public static string ToName(Subscription s) => s switch
    {
        Subscription.To => "to",
        Subscription.From => "from",
        Subscription.Both => "both",
        _ => "none",
    };
}

[JsonSerializable(typeof(RosterItem))]
[JsonSourceGenerationOptions(UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
internal sealed partial class RosterJson : JsonSerializerContext;
