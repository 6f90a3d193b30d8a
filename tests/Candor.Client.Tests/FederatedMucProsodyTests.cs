using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Client.Tests.Infrastructure;
using Candor.Server.Hosting;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Client.Tests;

/// <summary>
/// Group chat across servers with a server we did not write: a Prosody 0.12 (Debian) user enters a room of Candor's
/// chat service (conference.candor.example), and a Candor user a room of Prosody's (conference.localhost), each seeing
/// the room's presence, history and messages as its own server delivers them. The servers authenticate each other's
/// chat services by XEP-0220 dialback, as they do for their own domains (FederationProsodyTests).
/// </summary>
public sealed class FederatedMucProsodyTests : IAsyncLifetime
{
    private const string CandorDomain = "candor.example";
    private const string CandorRooms = "conference." + CandorDomain;
    private const string MucNs = "http://jabber.org/protocol/muc";
    private readonly string _data = Directory.CreateTempSubdirectory("candor-fedmuc-").FullName;
    private CandorHost _candor = null!;
    private FakeDns _dns = null!;
    private ProsodyFixture _prosody = null!;
    private string _fingerprint = "";

    public async Task InitializeAsync()
    {
        _candor = await CandorHost.StartAsync(new ServerOptions
        {
            Domain = CandorDomain, DataDirectory = _data, Bind = "127.0.0.1", C2sPort = 0, TlsPort = -1, S2sPort = 0,
            HttpPort = -1, HttpsPort = -1, MucDomain = CandorRooms,
        }, _ => { });
        using (var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_data, "tls", CandorDomain + ".crt"))))
            _fingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
        // Prosody finds both of Candor's domains by SRV; Candor finds Prosody's by S2sRoutes.
        var srv = new SrvRecord("xmpp.candor-host.example", _candor.S2sPort, 0, 0);
        _dns = FakeDns.Start(("_xmpp-server._tcp." + CandorDomain, srv), ("_xmpp-server._tcp." + CandorRooms, srv));
        _prosody = new ProsodyFixture { FederationDns = _dns.EndPoint, FederationHosts = "127.0.0.1 xmpp.candor-host.example\n", Rooms = true };
        await _prosody.InitializeAsync();
        _candor.Server.Options.S2sRoutes =
            $"{ProsodyFixture.Domain}=127.0.0.1:{_prosody.S2sPort},{ProsodyFixture.MucDomain}=127.0.0.1:{_prosody.S2sPort}";
    }

    public async Task DisposeAsync()
    {
        await _prosody.DisposeAsync();
        await _dns.DisposeAsync();
        await _candor.StopAsync();
        Directory.Delete(_data, recursive: true);
    }

    private static Task EnterAsync(XmppClient client, Jid occupant) =>
        client.SendAsync(new Element("presence", Ns.Client).SetAttribute("to", occupant.ToString()).Add(new Element("x", MucNs)));

    private static Task SayAsync(XmppClient client, Jid room, string body) => client.SendMessageAsync(room, body, "groupchat", requestReceipt: false);

    /// <summary>The occupant's own presence from the room: status 110 (XEP-0045 §7.2.3).</summary>
    private static Task<PresenceUpdate> SelfPresenceAsync(EventLog events, Jid occupant) =>
        events.WaitAsync<PresenceUpdate>(p => p.From == occupant && p.Available
            && p.Stanza.GetChild("x", MucNs + "#user")?.Elements.Any(s => s.GetAttribute("code") == "110") == true, 30);

    [Fact]
    public async Task A_prosody_user_chats_in_a_candor_room_and_a_candor_user_in_a_prosody_room()
    {
        Assert.True(await _candor.Server.Accounts.CreateAsync("cid", "cid-secret"));
        await _prosody.CreateUserAsync("anna", "anna-secret");
        await using var cid = new XmppClient(FederationScenario.CandorUser(_candor, "cid", "cid-secret", _fingerprint));
        await using var anna = new XmppClient(_prosody.Options("anna", "anna-secret"));
        var cidEvents = new EventLog(cid);
        var annaEvents = new EventLog(anna);
        await cid.ConnectAsync();
        await anna.ConnectAsync();
        await cid.SendPresenceAsync();
        await anna.SendPresenceAsync();

        try
        {
            // A Candor room, and anna from Prosody in it.
            var candorRoom = Jid.Parse($"tea@{CandorRooms}");
            await EnterAsync(cid, candorRoom.WithResource("cid"));
            await SelfPresenceAsync(cidEvents, candorRoom.WithResource("cid"));
            await cid.IqAsync(new Element("iq", Ns.Client).SetAttribute("type", "set").SetAttribute("to", candorRoom.ToString())
                .Add(new Element("query", MucNs + "#owner").Add(new Element("x", Ns.DataForms).SetAttribute("type", "submit"))));
            await SayAsync(cid, candorRoom, "said before anna came");
            await cidEvents.WaitAsync<ChatMessage>(m => m.Body == "said before anna came", 30);

            await EnterAsync(anna, candorRoom.WithResource("anna"));
            await annaEvents.WaitAsync<PresenceUpdate>(p => p.From == candorRoom.WithResource("cid") && p.Available, 30);
            await SelfPresenceAsync(annaEvents, candorRoom.WithResource("anna"));
            var history = await annaEvents.WaitAsync<ChatMessage>(m => m.Body == "said before anna came", 30);
            Assert.Equal((candorRoom.WithResource("cid"), "groupchat"), (history.From, history.Type));
            Assert.NotNull(history.Stamp);
            await cidEvents.WaitAsync<PresenceUpdate>(p => p.From == candorRoom.WithResource("anna") && p.Available, 30);

            await SayAsync(anna, candorRoom, "hello from prosody");
            Assert.Equal(candorRoom.WithResource("anna"), (await cidEvents.WaitAsync<ChatMessage>(m => m.Body == "hello from prosody", 30)).From);
            await annaEvents.WaitAsync<ChatMessage>(m => m.Body == "hello from prosody" && m.From == candorRoom.WithResource("anna"), 30);
            await SayAsync(cid, candorRoom, "hello from candor");
            Assert.Equal(candorRoom.WithResource("cid"), (await annaEvents.WaitAsync<ChatMessage>(m => m.Body == "hello from candor", 30)).From);

            // A Prosody room, and cid from Candor in it.
            var prosodyRoom = Jid.Parse($"lounge@{ProsodyFixture.MucDomain}");
            await EnterAsync(anna, prosodyRoom.WithResource("anna"));
            await SelfPresenceAsync(annaEvents, prosodyRoom.WithResource("anna"));
            await EnterAsync(cid, prosodyRoom.WithResource("cid"));
            await cidEvents.WaitAsync<PresenceUpdate>(p => p.From == prosodyRoom.WithResource("anna") && p.Available, 30);
            await SelfPresenceAsync(cidEvents, prosodyRoom.WithResource("cid"));
            await annaEvents.WaitAsync<PresenceUpdate>(p => p.From == prosodyRoom.WithResource("cid") && p.Available, 30);

            await SayAsync(anna, prosodyRoom, "welcome to prosody's room");
            Assert.Equal(prosodyRoom.WithResource("anna"), (await cidEvents.WaitAsync<ChatMessage>(m => m.Body == "welcome to prosody's room", 30)).From);
            await SayAsync(cid, prosodyRoom, "thanks from candor");
            Assert.Equal(prosodyRoom.WithResource("cid"), (await annaEvents.WaitAsync<ChatMessage>(m => m.Body == "thanks from candor", 30)).From);
            await cidEvents.WaitAsync<ChatMessage>(m => m.Body == "thanks from candor" && m.From == prosodyRoom.WithResource("cid"), 30);

            // Leaving a room on the other server: the others there see it.
            await cid.SendAsync(new Element("presence", Ns.Client).SetAttribute("to", prosodyRoom.WithResource("cid").ToString()).SetAttribute("type", "unavailable"));
            await annaEvents.WaitAsync<PresenceUpdate>(p => p.From == prosodyRoom.WithResource("cid") && !p.Available, 30);
            await anna.SendAsync(new Element("presence", Ns.Client).SetAttribute("to", candorRoom.WithResource("anna").ToString()).SetAttribute("type", "unavailable"));
            await cidEvents.WaitAsync<PresenceUpdate>(p => p.From == candorRoom.WithResource("anna") && !p.Available, 30);
        }
        catch (Exception e) when (e is TimeoutException or Xunit.Sdk.XunitException)
        {
            throw new Exception($"{e.Message}\nprosody log:\n{_prosody.Log}", e);
        }
    }
}
