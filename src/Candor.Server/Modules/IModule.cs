using Candor.Server.Core;

namespace Candor.Server.Modules;

/// <summary>
/// A feature of the server: one folder, one module class. <see cref="Register"/> is where everything the
/// feature touches is visible at a glance: hooks with priorities, IQ handlers, disco and stream features.
/// </summary>
public interface IModule
{
    /// <summary>The specifications the module implements, for docs/PROTOCOLS.md.</summary>
    IReadOnlyList<Protocol> Protocols { get; }
    void Register(XmppServer server);
}

public sealed record Protocol(string Spec, string Version, string Note = "");

public static class ModuleCatalog
{
    public static IReadOnlyList<IModule> Create() =>
    [
        new Policy.PolicyModule(),
        new Messages.MessageModule(),
        new Carbons.CarbonsModule(),
        new Blocking.BlockingModule(),
        new StreamManagement.StreamManagementModule(),
        new ClientState.ClientStateModule(),
        new Roster.RosterModule(),
        new Presence.PresenceModule(),
        new Archive.ArchiveModule(),
        new Offline.OfflineModule(),
        new Push.PushModule(),
        new Disco.DiscoModule(),
        new Ping.PingModule(),
        new Version.VersionModule(),
        new Time.TimeModule(),
        new LastActivity.LastActivityModule(),
        new VCard.VCardModule(),
        new Private.PrivateModule(),
        new Register.RegisterModule(),
        new Clients.ClientsModule(),
        new Fast.FastModule(),
        new AdHoc.AdHocModule(),
        new Audit.AuditModule(),
        new DataExport.DataExportModule(),
        new ServerChat.ServerChatModule(),
        new Muc.MucModule(),
        new Pep.PepModule(),
        new Upload.UploadModule(),
        new ExternalServices.ExternalServicesModule(),
    ];

    public static void RegisterAll(XmppServer server)
    {
        foreach (var module in Create()) module.Register(server);
    }
}
