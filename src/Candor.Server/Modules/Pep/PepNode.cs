using System.Globalization;
using System.Text.Json.Serialization;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Pep;

public static class PubSubNs
{
    public const string PubSub = "http://jabber.org/protocol/pubsub";
    public const string Owner = "http://jabber.org/protocol/pubsub#owner";
    public const string Event = "http://jabber.org/protocol/pubsub#event";
    public const string Errors = "http://jabber.org/protocol/pubsub#errors";
    public const string NodeConfig = "http://jabber.org/protocol/pubsub#node_config";
    public const string PublishOptions = "http://jabber.org/protocol/pubsub#publish-options";
    public const string MetaData = "http://jabber.org/protocol/pubsub#meta-data";
}

public enum AccessModel { Presence, Open, Roster, Whitelist }

public enum SendLast { Never, OnSub, OnSubAndPresence }

/// <summary>A node's configuration (XEP-0060 §16.4.3, pubsub#node_config), with the PEP defaults of XEP-0163 §5.</summary>
public sealed record NodeConfig
{
    public AccessModel Access { get; init; } = AccessModel.Presence;
    /// <summary>Items kept; null means "max", the server's limit per node.</summary>
    public int? MaxItems { get; init; } = 1;
    public bool PersistItems { get; init; } = true;
    public SendLast SendLast { get; init; } = SendLast.OnSubAndPresence;
    public bool DeliverNotifications { get; init; } = true;
    public bool DeliverPayloads { get; init; } = true;
    public bool NotifyRetract { get; init; } = true;
    public bool NotifyDelete { get; init; } = true;
    public string? Title { get; init; }
    public string? PayloadType { get; init; }
    public string[] RosterGroups { get; init; } = [];

    public int EffectiveMaxItems(int serverLimit) => Math.Min(MaxItems ?? serverLimit, serverLimit);

    private static string Name(AccessModel a) => a.ToString().ToLowerInvariant();

    private static string Name(SendLast s) => s switch
    {
        SendLast.Never => "never",
        SendLast.OnSub => "on_sub",
        _ => "on_sub_and_presence",
    };

    private static string Bool(bool b) => b ? "1" : "0";

    /// <summary>The field values as data-form strings, by var (for forms and for publish-options comparison).</summary>
    public IEnumerable<(string Var, string Type, string[] Values)> Fields()
    {
        yield return ("pubsub#access_model", "list-single", [Name(Access)]);
        yield return ("pubsub#max_items", "text-single", [MaxItems?.ToString(CultureInfo.InvariantCulture) ?? "max"]);
        yield return ("pubsub#persist_items", "boolean", [Bool(PersistItems)]);
        yield return ("pubsub#send_last_published_item", "list-single", [Name(SendLast)]);
        yield return ("pubsub#deliver_notifications", "boolean", [Bool(DeliverNotifications)]);
        yield return ("pubsub#deliver_payloads", "boolean", [Bool(DeliverPayloads)]);
        yield return ("pubsub#notify_retract", "boolean", [Bool(NotifyRetract)]);
        yield return ("pubsub#notify_delete", "boolean", [Bool(NotifyDelete)]);
        yield return ("pubsub#title", "text-single", Title is null ? [] : [Title]);
        yield return ("pubsub#type", "text-single", PayloadType is null ? [] : [PayloadType]);
        yield return ("pubsub#roster_groups_allowed", "list-multi", RosterGroups);
        yield return ("pubsub#publish_model", "list-single", ["publishers"]);
    }

    public Element ToForm(string formType = PubSubNs.NodeConfig, string type = "form")
    {
        var form = new Element("x", Ns.DataForms).SetAttribute("type", type);
        form.AddChild("field").SetAttribute("var", "FORM_TYPE").SetAttribute("type", "hidden").AddChild("value").AddText(formType);
        foreach (var (var, fieldType, values) in Fields())
        {
            var field = form.AddChild("field").SetAttribute("var", var).SetAttribute("type", fieldType);
            if (var == "pubsub#access_model")
                foreach (var option in new[] { "open", "presence", "roster", "whitelist" })
                    field.AddChild("option").AddChild("value").AddText(option);
            if (var == "pubsub#send_last_published_item")
                foreach (var option in new[] { "never", "on_sub", "on_sub_and_presence" })
                    field.AddChild("option").AddChild("value").AddText(option);
            foreach (var value in values) field.AddChild("value").AddText(value);
        }
        return form;
    }

    /// <summary>
    /// Applies a submitted form's fields. Returns an error text for a value the server cannot accept;
    /// fields it does not know are an error too when <paramref name="strict"/> (publish-options preconditions).
    /// </summary>
    public (NodeConfig? Config, string? Error) Apply(IEnumerable<(string Var, string[] Values)> fields, int maxItemsLimit, bool strict)
    {
        var config = this;
        foreach (var (var, values) in fields)
        {
            var value = values.Length > 0 ? values[0] : "";
            switch (var)
            {
                case "FORM_TYPE":
                    break;
                case "pubsub#access_model":
                    AccessModel? access = value switch
                    {
                        "presence" => AccessModel.Presence, "open" => AccessModel.Open,
                        "roster" => AccessModel.Roster, "whitelist" => AccessModel.Whitelist, _ => null,
                    };
                    if (access is null) return (null, $"access model '{value}' is not supported (open, presence, roster, whitelist)");
                    config = config with { Access = access.Value };
                    break;
                case "pubsub#max_items":
                    if (value == "max") config = config with { MaxItems = null };
                    else if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max >= 1)
                    {
                        if (max > maxItemsLimit) return (null, $"max_items {max} is above this server's limit of {maxItemsLimit} items per node (use 'max')");
                        config = config with { MaxItems = max };
                    }
                    else return (null, $"max_items '{value}' is neither a positive number nor 'max'");
                    break;
                case "pubsub#persist_items":
                case "pubsub#deliver_notifications":
                case "pubsub#deliver_payloads":
                case "pubsub#notify_retract":
                case "pubsub#notify_delete":
                    if (ParseBool(value) is not { } b) return (null, $"{var} '{value}' is not a boolean");
                    config = var switch
                    {
                        "pubsub#persist_items" => config with { PersistItems = b },
                        "pubsub#deliver_notifications" => config with { DeliverNotifications = b },
                        "pubsub#deliver_payloads" => config with { DeliverPayloads = b },
                        "pubsub#notify_retract" => config with { NotifyRetract = b },
                        _ => config with { NotifyDelete = b },
                    };
                    break;
                case "pubsub#send_last_published_item":
                    SendLast? send = value switch
                    {
                        "never" => SendLast.Never, "on_sub" => SendLast.OnSub, "on_sub_and_presence" => SendLast.OnSubAndPresence, _ => null,
                    };
                    if (send is null) return (null, $"send_last_published_item '{value}' is not never, on_sub or on_sub_and_presence");
                    config = config with { SendLast = send.Value };
                    break;
                case "pubsub#title":
                    config = config with { Title = value.Length == 0 ? null : value };
                    break;
                case "pubsub#type":
                    config = config with { PayloadType = value.Length == 0 ? null : value };
                    break;
                case "pubsub#roster_groups_allowed":
                    config = config with { RosterGroups = values };
                    break;
                case "pubsub#publish_model":
                    if (value != "publishers") return (null, "only the account itself publishes to its PEP nodes (publish_model publishers)");
                    break;
                default:
                    if (strict) return (null, $"{var} is not a node configuration field this server knows");
                    break;
            }
        }
        return (config, null);
    }

    /// <summary>The first precondition (XEP-0060 §7.1.5) this configuration does not meet, or null when it meets them all.</summary>
    public string? Unmet(IEnumerable<(string Var, string[] Values)> preconditions, int maxItemsLimit)
    {
        var (wanted, error) = Apply(preconditions, maxItemsLimit, strict: true);
        if (wanted is null) return error;
        var mine = Fields().ToDictionary(f => f.Var, f => f.Values);
        foreach (var (var, _) in preconditions)
        {
            if (var == "FORM_TYPE") continue;
            var want = wanted.Fields().First(f => f.Var == var).Values;
            if (!want.SequenceEqual(mine[var])) return $"{var} is '{string.Join(",", mine[var])}', not '{string.Join(",", want)}'";
        }
        return null;
    }

    public static bool? ParseBool(string value) => value switch
    {
        "1" or "true" => true,
        "0" or "false" => false,
        _ => null,
    };

    /// <summary>The fields of a data form (XEP-0004) as var and values.</summary>
    public static List<(string Var, string[] Values)> ReadForm(Element? form)
    {
        var fields = new List<(string, string[])>();
        if (form is null) return fields;
        foreach (var field in form.Elements)
            if (field.Is("field", Ns.DataForms) && field.GetAttribute("var") is { } var)
                fields.Add((var, [.. field.Elements.Where(v => v.Is("value", Ns.DataForms)).Select(v => v.Text)]));
        return fields;
    }

    public static string? FormType(List<(string Var, string[] Values)> fields) =>
        fields.FirstOrDefault(f => f.Var == "FORM_TYPE").Values?.FirstOrDefault();
}

/// <summary>A published item: its id, its payload as stored, when and in what order it was published.</summary>
public sealed class PepItem
{
    public required string Id { get; init; }
    public required string Xml { get; init; }
    public required DateTimeOffset Published { get; init; }
    [JsonIgnore]
    public Element Payload => _payload ??= Storage.StoredStanza.Parse(Xml);
    private Element? _payload;
}

/// <summary>A node of an account's PEP service: configuration and items, oldest first.</summary>
public sealed class PepNode
{
    public required string Name { get; init; }
    public NodeConfig Config { get; set; } = new();
    public List<PepItem> Items { get; set; } = [];

    public PepItem? Last => Items.Count == 0 ? null : Items[^1];

    public int Bytes
    {
        get
        {
            var total = 0;
            foreach (var item in Items) total += item.Xml.Length;
            return total;
        }
    }
}

[JsonSerializable(typeof(PepNode))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
internal sealed partial class PepJson : JsonSerializerContext;
