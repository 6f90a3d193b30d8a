namespace Candor.Server.Modules.Muc;

/// <summary>Long-lived standing in a room (XEP-0045 §5.2), in rising order of privilege.</summary>
public enum Affiliation
{
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

/// <summary>Standing of an occupant while in the room (XEP-0045 §5.1), in rising order of privilege.</summary>
public enum Role
{
    None,
    Visitor,
    Participant,
    Moderator,
}

/// <summary>The names XEP-0045 gives affiliations and roles on the wire, and its default mapping between them.</summary>
public static class Roles
{
    public static string Name(Affiliation affiliation) => affiliation switch
    {
        Affiliation.Outcast => "outcast",
        Affiliation.Member => "member",
        Affiliation.Admin => "admin",
        Affiliation.Owner => "owner",
        _ => "none",
    };

    public static string Name(Role role) => role switch
    {
        Role.Visitor => "visitor",
        Role.Participant => "participant",
        Role.Moderator => "moderator",
        _ => "none",
    };

    public static bool TryParseAffiliation(string? text, out Affiliation affiliation) => TryParse(text, Name, out affiliation);

    public static bool TryParseRole(string? text, out Role role) => TryParse(text, Name, out role);

    private static bool TryParse<T>(string? text, Func<T, string> name, out T value) where T : struct, Enum
    {
        foreach (var candidate in Enum.GetValues<T>())
            if (name(candidate) == text)
            {
                value = candidate;
                return true;
            }
        value = default;
        return false;
    }

    /// <summary>The role an occupant gets on entering (XEP-0045 §5.1.2): admins and owners moderate; in a moderated room only members speak.</summary>
    public static Role Default(Affiliation affiliation, bool moderated) => affiliation switch
    {
        Affiliation.Owner or Affiliation.Admin => Role.Moderator,
        Affiliation.Member => Role.Participant,
        _ => moderated ? Role.Visitor : Role.Participant,
    };
}
