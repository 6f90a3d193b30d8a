using System.Net;
using Candor.Server.Audit;
using Candor.Server.Modules.DataExport;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Audit;

/// <summary>
/// "Export my data" (issue 18) without an HTTP listener: the XEP-0227 file comes in-band in the result form, holds the
/// account's roster, vCard, private XML and offline messages but not its credentials nor anyone else's data, and the
/// export is an operator log entry by the account, at the index the note cites.
/// </summary>
public sealed class DataExportTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Export_my_data_comes_in_band_with_the_accounts_data_only_and_is_logged_by_the_account()
    {
        var user = await server.CreateUserAsync("exporter");
        var other = await server.CreateUserAsync("other");
        await using (var sender = await server.LoginAsync(other))
        {
            await sender.SendAsync($"<message to='{user}@localhost' type='chat' id='m1'><body>kept for you</body></message>");
            await sender.RequestAsync("<iq type='set' id='{id}'><vCard xmlns='vcard-temp'><FN>Not The Exporter</FN></vCard></iq>");
        }
        await using var client = await server.LoginAsync(user);
        await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='pal@localhost' name='Pal'><group>Friends</group></item></query></iq>");
        await client.RequestAsync("<iq type='set' id='{id}'><vCard xmlns='vcard-temp'><FN>The Exporter</FN></vCard></iq>");
        await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:private'><notes xmlns='storage:rosternotes'><note jid='pal@localhost'>met at work</note></notes></query></iq>");

        var command = await ExportAsync(client);
        var field = command.GetChild("x", Ns.DataForms)!.Elements.Single(f => f.GetAttribute("var") == DataExportModule.FileField);
        var text = string.Join('\n', field.Elements.Select(v => v.Text));
        var account = Assert.Single(PortableData.UsersOf(PortableData.Parse(text), "localhost"));
        Assert.Equal(user, account.GetAttribute("name"));
        var item = Assert.Single(account.GetChild("query", Ns.Roster)!.Elements);
        Assert.Equal(("pal@localhost", "Pal", "Friends"), (item.GetAttribute("jid"), item.GetAttribute("name"), item.GetChildText("group", Ns.Roster)));
        Assert.Equal("The Exporter", account.GetChild("vCard", Ns.VCard)!.GetChildText("FN", Ns.VCard));
        Assert.Contains("met at work", ElementWriter.ToXmlString(account.GetChild("query", Ns.Private)!));
        Assert.Equal("kept for you", Assert.Single(account.GetChild("offline-messages", PortableData.Namespace)!.Elements).GetChildText("body", Ns.Client));
        Assert.DoesNotContain("scram-credentials", text);
        Assert.DoesNotContain("Not The Exporter", text);

        var entry = server.Host.Server.Audit.Read().Last(e => e.Account == $"{user}@localhost");
        Assert.Equal((AuditEntry.Actors.Account, AuditActions.DataExported, "in-band"), (entry.Actor, entry.Action, entry.Details["delivery"]));
        Assert.Contains($"operator log entry #{entry.Index}", command.GetChildText("note", Commands));
    }

    [Fact]
    public async Task With_http_the_export_is_a_download_link_and_the_file_goes_when_the_account_removes_itself()
    {
        await using var fixture = await ServerFixture.StartAsync(o => o.HttpPort = 0);
        var user = await fixture.CreateUserAsync("leaver");
        await using var client = await fixture.LoginAsync(user);
        var command = await ExportAsync(client);
        var field = command.GetChild("x", Ns.DataForms)!.Elements.Single(f => f.GetAttribute("var") == DataExportModule.UrlField);
        var url = field.GetChildText("value", Ns.DataForms)!.Replace("//localhost:", "//127.0.0.1:", StringComparison.Ordinal);
        using var http = new HttpClient();
        var download = await http.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Contains($"<user name='{user}'>", await download.Content.ReadAsStringAsync());
        Assert.Contains(url[(url.IndexOf("/upload/", StringComparison.Ordinal))..].Split('/')[2], command.GetChildText("note", Commands));

        var removed = await client.RequestAsync(RegistrationTests.Removal(user, ServerFixture.Password(user)));
        Assert.Equal("result", removed.Type());
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(url)).StatusCode);
    }

    private const string Commands = "http://jabber.org/protocol/commands";

    private static async Task<Element> ExportAsync(XmppTestClient client)
    {
        var result = await client.RequestAsync($"<iq type='set' to='localhost' id='{{id}}'><command xmlns='{Commands}' node='{DataExportModule.CommandNode}' action='execute'/></iq>");
        Assert.Equal("result", result.Type());
        var command = result.GetChild("command", Commands)!;
        Assert.Equal("completed", command.GetAttribute("status"));
        return command;
    }
}
