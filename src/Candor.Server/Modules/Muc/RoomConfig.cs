using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// A room's configuration (XEP-0045 §10.2) and the muc#roomconfig data form owners edit it with. The same
/// field names are used to store it, so what is stored is what the owner submitted.
/// </summary>
public sealed class RoomConfig
{
    public const string FormType = "http://jabber.org/protocol/muc#roomconfig";
    public const int MaxHistoryLimit = 100;
    public const string BlockedWordsField = "candor#roomconfig_blockedwords";
    /// <summary>The field Prosody's mod_muc_mam uses, which clients know.</summary>
    public const string ArchivingField = "muc#roomconfig_enablearchiving";
    public const int MaxBlockedWords = 50, MaxBlockedWordLength = 64;

    public string Name { get; set; } = "";
    public string Description { get; set; } = "";
    public bool Persistent { get; set; }
    public bool Public { get; set; } = true;
    public bool MembersOnly { get; set; }
    public bool Moderated { get; set; }
    public string Password { get; set; } = "";
    /// <summary>Who sees occupants' real JIDs: "moderators" (semi-anonymous) or "anyone" (non-anonymous).</summary>
    public string WhoIs { get; set; } = "moderators";
    /// <summary>Most occupants at once; 0 for no limit.</summary>
    public int MaxUsers { get; set; }
    public bool OccupantsChangeSubject { get; set; }
    public bool AllowInvites { get; set; }
    /// <summary>Who may send private messages: anyone, participants, moderators or none.</summary>
    public string AllowPm { get; set; } = "anyone";
    /// <summary>Messages kept for the history sent on entering.</summary>
    public int HistoryLength { get; set; } = 20;
    /// <summary>Messages are kept in the room's archive (XEP-0313), and the history on entering comes from it.</summary>
    public bool Archived { get; set; }
    /// <summary>
    /// The room's own content rule: messages containing one of these (ignoring case) are refused with
    /// policy-violation, to the sender only. Shown to everyone in the room's disco#info.
    /// </summary>
    public IReadOnlyList<string> BlockedWords { get; set; } = [];

    public bool PasswordProtected => Password.Length > 0;
    public bool NonAnonymous => WhoIs == "anyone";

    /// <summary>The form an owner fills in (XEP-0045 §10.2), with the current values.</summary>
    public Element Form()
    {
        var form = new Element("x", Ns.DataForms).SetAttribute("type", "form");
        form.AddChild("title").AddText("Configuration of the room");
        Field(form, "FORM_TYPE", "hidden", FormType);
        Field(form, "muc#roomconfig_roomname", "text-single", Name, "Name of the room");
        Field(form, "muc#roomconfig_roomdesc", "text-single", Description, "Description");
        Field(form, "muc#roomconfig_persistentroom", "boolean", Bool(Persistent), "Keep the room when its last occupant leaves");
        Field(form, "muc#roomconfig_publicroom", "boolean", Bool(Public), "List the room in the directory");
        Field(form, "muc#roomconfig_membersonly", "boolean", Bool(MembersOnly), "Only members may enter");
        Field(form, "muc#roomconfig_moderatedroom", "boolean", Bool(Moderated), "Only participants with voice may speak");
        Field(form, "muc#roomconfig_passwordprotectedroom", "boolean", Bool(PasswordProtected), "A password is needed to enter");
        Field(form, "muc#roomconfig_roomsecret", "text-private", Password, "Password");
        Options(Field(form, "muc#roomconfig_whois", "list-single", WhoIs, "Who may see real JIDs"), "moderators", "anyone");
        Options(Field(form, "muc#roomconfig_maxusers", "list-single", MaxUsers == 0 ? "none" : MaxUsers.ToString(), "Most occupants"),
            "10", "20", "50", "100", "1000", "none");
        Field(form, "muc#roomconfig_changesubject", "boolean", Bool(OccupantsChangeSubject), "Occupants may change the subject");
        Field(form, "muc#roomconfig_allowinvites", "boolean", Bool(AllowInvites), "Occupants may invite others");
        Options(Field(form, "muc#roomconfig_allowpm", "list-single", AllowPm, "Who may send private messages"),
            "anyone", "participants", "moderators", "none");
        Field(form, ArchivingField, "boolean", Bool(Archived), "Archive the room's messages (occupants are told when they enter)");
        Field(form, "muc#maxhistoryfetch", "text-single", HistoryLength.ToString(), $"Messages of history kept (at most {MaxHistoryLimit})");
        var words = form.AddChild("field").SetAttribute("var", BlockedWordsField).SetAttribute("type", "text-multi")
            .SetAttribute("label", $"Words refused in this room, one a line (at most {MaxBlockedWords}); shown to everyone");
        foreach (var word in BlockedWords) words.AddChild("value").AddText(word);
        return form;
    }

    /// <summary>
    /// The configuration with a submitted form applied (fields missing from it keep their values); null, with
    /// what is wrong in <paramref name="problem"/> (answered with not-acceptable), when it cannot be.
    /// </summary>
    public RoomConfig? With(Element submitted, out string? problem)
    {
        problem = Check(submitted, out var next);
        return problem is null ? next : null;
    }

    private string? Check(Element submitted, out RoomConfig next)
    {
        next = (RoomConfig)MemberwiseClone();
        var passwordProtected = (bool?)null;
        foreach (var field in submitted.Elements)
        {
            if (!field.Is("field", Ns.DataForms)) continue;
            var value = field.GetChildText("value", Ns.DataForms) ?? "";
            switch (field.GetAttribute("var"))
            {
                case "FORM_TYPE" when value != FormType: return $"FORM_TYPE must be {FormType}";
                case "muc#roomconfig_roomname": next.Name = value; break;
                case "muc#roomconfig_roomdesc": next.Description = value; break;
                case "muc#roomconfig_persistentroom": next.Persistent = IsTrue(value); break;
                case "muc#roomconfig_publicroom": next.Public = IsTrue(value); break;
                case "muc#roomconfig_membersonly": next.MembersOnly = IsTrue(value); break;
                case "muc#roomconfig_moderatedroom": next.Moderated = IsTrue(value); break;
                case "muc#roomconfig_passwordprotectedroom": passwordProtected = IsTrue(value); break;
                case "muc#roomconfig_roomsecret": next.Password = value; break;
                case "muc#roomconfig_whois" when value is "moderators" or "anyone": next.WhoIs = value; break;
                case "muc#roomconfig_whois": return "muc#roomconfig_whois is moderators or anyone";
                case "muc#roomconfig_maxusers" when value is "none" or "" or "0": next.MaxUsers = 0; break;
                case "muc#roomconfig_maxusers" when int.TryParse(value, out var max) && max > 0: next.MaxUsers = max; break;
                case "muc#roomconfig_maxusers": return "muc#roomconfig_maxusers is a positive number or none";
                case "muc#roomconfig_changesubject": next.OccupantsChangeSubject = IsTrue(value); break;
                case ArchivingField: next.Archived = IsTrue(value); break;
                case "muc#roomconfig_allowinvites": next.AllowInvites = IsTrue(value); break;
                case "muc#roomconfig_allowpm" when value is "anyone" or "participants" or "moderators" or "none": next.AllowPm = value; break;
                case "muc#roomconfig_allowpm": return "muc#roomconfig_allowpm is anyone, participants, moderators or none";
                case "muc#maxhistoryfetch" when int.TryParse(value, out var history) && history >= 0:
                    next.HistoryLength = Math.Min(history, MaxHistoryLimit);
                    break;
                case "muc#maxhistoryfetch": return "muc#maxhistoryfetch is a number";
                case BlockedWordsField:
                    var words = field.Elements.Where(v => v.Is("value", Ns.DataForms)).Select(v => v.Text.Trim()).Where(w => w.Length > 0).Distinct().ToList();
                    if (words.Count > MaxBlockedWords || words.Any(w => w.Length > MaxBlockedWordLength))
                        return $"at most {MaxBlockedWords} blocked words of at most {MaxBlockedWordLength} characters";
                    next.BlockedWords = words;
                    break;
            }
        }
        if (passwordProtected == false) next.Password = "";
        else if (passwordProtected == true && next.Password.Length == 0) return "a password-protected room needs muc#roomconfig_roomsecret";
        return null;
    }

    /// <summary>The first of the room's blocked words in the message's body or subject; null when none is.</summary>
    public string? BlockedWordIn(Element message)
    {
        if (BlockedWords.Count == 0) return null;
        foreach (var child in message.Elements)
            if (child.Namespace == Ns.Client && child.Name is "body" or "subject")
                foreach (var word in BlockedWords)
                    if (child.Text.Contains(word, StringComparison.OrdinalIgnoreCase)) return word;
        return null;
    }

    /// <summary>The disco#info features that describe the room (XEP-0045 §6.4, §15.3).</summary>
    public IEnumerable<string> Features()
    {
        yield return Persistent ? "muc_persistent" : "muc_temporary";
        yield return Public ? "muc_public" : "muc_hidden";
        yield return MembersOnly ? "muc_membersonly" : "muc_open";
        yield return Moderated ? "muc_moderated" : "muc_unmoderated";
        yield return PasswordProtected ? "muc_passwordprotected" : "muc_unsecured";
        yield return NonAnonymous ? "muc_nonanonymous" : "muc_semianonymous";
    }

    private static Element Field(Element form, string var, string type, string value, string? label = null)
    {
        var field = form.AddChild("field").SetAttribute("var", var).SetAttribute("type", type).SetAttribute("label", label);
        field.AddChild("value").AddText(value);
        return field;
    }

    private static void Options(Element field, params string[] values)
    {
        foreach (var value in values) field.AddChild("option").SetAttribute("label", value).AddChild("value").AddText(value);
    }

    private static string Bool(bool value) => value ? "1" : "0";

    public static bool IsTrue(string value) => value is "1" or "true";
}
