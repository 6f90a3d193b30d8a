using System.Text;
using Candor.Server.Audit;
using Candor.Server.Core;
using Candor.Server.Modules.Upload;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.DataExport;

/// <summary>
/// Each user's own data (issue 18): the ad-hoc command "Export my data" gives the account a XEP-0227 file of everything
/// stored for it — roster, vCard, private XML, PEP, offline messages, archive — as a link to a file in the upload service
/// (sealed like any upload, deleted after the upload retention) or, without one, in-band in the result form. Every export
/// leaves an entry in the operator log. The operator's side is <c>candor user export|import</c>.
/// </summary>
public sealed class DataExportModule : IModule
{
    public const string CommandNode = "export-my-data";
    public const string FileField = "xep0227";
    public const string UrlField = "url";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0227", "1.1", "an account's own data by the ad-hoc command \"Export my data\"; candor user export/import for operators (Prosody's format, SCRAM credentials included; imports ejabberd's export_piefxis files too)"),
    ];

    public void Register(XmppServer server) =>
        server.Disco.Commands[CommandNode] = new(CommandNode, "Export my data", requester => ExportAsync(server, requester));

    private static async ValueTask<AdHocResult> ExportAsync(XmppServer server, Jid requester)
    {
        var user = requester.Local!;
        var document = await PortableData.ExportAsync(server.Accounts, server.Domain.Domain, user, credentials: false);
        var bytes = Encoding.UTF8.GetBytes("<?xml version='1.0' encoding='UTF-8'?>\n" + ElementWriter.ToXmlString(document) + "\n");
        // Without an HTTP listener (or a public upload address set) a link would lead nowhere.
        var options = server.Options;
        var linkable = options.UploadBaseUrl is not null || options.HttpPort >= 0 || options.HttpsPort >= 0;
        var url = server.Uploads is { } uploads && linkable ? await UploadAsync(uploads, user, bytes) : null;
        var index = await server.Audit.AppendAsync(AuditEntry.Actors.Account, AuditActions.DataExported, requester.Bare.ToString(),
            new Dictionary<string, string> { ["format"] = "XEP-0227", ["delivery"] = url is null ? "in-band" : "upload", ["bytes"] = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var form = new Element("x", Ns.DataForms).SetAttribute("type", "result");
        form.AddChild("title").AddText("Your data (XEP-0227)");
        var field = form.AddChild("field").SetAttribute("var", url is null ? FileField : UrlField).SetAttribute("type", url is null ? "text-multi" : "text-single")
            .SetAttribute("label", url is null ? "XEP-0227 file" : "Download link");
        if (url is null)
            foreach (var line in Encoding.UTF8.GetString(bytes).TrimEnd('\n').Split('\n')) field.AddChild("value").AddText(line);
        else field.AddChild("value").AddText(url);
        var note = (url is null ? "Your data as a XEP-0227 file is in this result's form" : $"Your data as a XEP-0227 file: {url} (deleted after {server.Options.UploadRetentionDays} days)")
            + $" ({bytes.Length} bytes; your password is not in it). This export is operator log entry #{index}.";
        return new AdHocResult(note, form);
    }

    /// <summary>The file in the account's upload space; null when the quota has no room (the export then goes in-band).</summary>
    private static async Task<string?> UploadAsync(UploadService uploads, string user, byte[] bytes)
    {
        var fileName = $"{user}-data-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.xml";
        var (token, _) = uploads.CreateSlot(new UploadInfo(user, bytes.Length, "application/xml", fileName, DateTimeOffset.UtcNow));
        if (token is null || uploads.TryClaim(token, out var slot) != UploadService.Claim.Claimed) return null;
        using var body = new MemoryStream(bytes);
        await uploads.StoreAsync(token, slot!, body, CancellationToken.None);
        return uploads.Url(token, fileName);
    }
}
