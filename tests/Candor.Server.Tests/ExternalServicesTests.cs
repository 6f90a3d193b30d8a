using System.Security.Cryptography;
using System.Text;
using Candor.Server.Tests.Harness;

namespace Candor.Server.Tests;

/// <summary>External Service Discovery (XEP-0215): what is advertised, and the TURN REST API credentials.</summary>
public sealed class ExternalServicesTests
{
    private const string Ns = "urn:xmpp:extdisco:2";

    [Fact]
    public async Task Without_TurnHost_nothing_is_advertised_or_answered()
    {
        await using var server = await ServerFixture.StartAsync();
        await using var client = await server.OnlineUserAsync();
        var info = await client.RequestAsync("<iq type='get' to='localhost' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.DoesNotContain(Ns, info.ToString());
        Assert.DoesNotContain("TURN", Encoding.UTF8.GetString(server.Host.Server.Policy.Current.Published.Json));
        (await client.RequestAsync($"<iq type='get' to='localhost' id='{{id}}'><services xmlns='{Ns}'/></iq>")).AssertError("service-unavailable");
    }

    /// <summary>Issue 17: the XEP-0504 data policy in disco#info states upload retention and limits, and that call media never passes the server.</summary>
    [Fact]
    public async Task The_data_policy_form_states_upload_retention_and_limits_and_that_the_server_never_sees_call_media()
    {
        await using var server = await ServerFixture.StartAsync(o =>
        {
            o.TurnHost = "turn.example.org";
            o.TurnSecret = "s3cret";
            o.UploadMaxBytes = 5_000_000;
            o.UploadQuotaBytes = 9_000_000;
            o.UploadRetentionDays = 7;
        });
        await using var client = await server.OnlineUserAsync();
        var info = await client.RequestAsync("<iq type='get' to='localhost' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var form = info.FirstElement!.Elements.Single(x => x.Name == "x"
            && x.Elements.Any(f => f.GetAttribute("var") == "FORM_TYPE" && f.GetChildText("value", "jabber:x:data") == "urn:xmpp:data-policy:0"));
        var extra = form.Elements.Single(f => f.GetAttribute("var") == "extra_info").Elements.Select(v => v.Text).ToList();
        Assert.Contains(extra, line => line.StartsWith("Files uploaded with HTTP File Upload (XEP-0363)")
                                       && line.Contains("7 days after the upload, then deleted; at most 5000000 bytes per file and 9000000 bytes per account"));
        Assert.Contains(extra, line => line.StartsWith("Calls (Jingle audio and video)")
                                       && line.Contains("call media goes between the clients or through the relay at turn.example.org and never through this server")
                                       && line.Contains("nothing is stored"));
    }

    [Fact]
    public async Task Stun_and_turn_with_turns_are_listed_with_credentials_that_expire_after_the_ttl()
    {
        await using var server = await ServerFixture.StartAsync(o =>
        {
            o.TurnHost = "turn.example.org";
            o.TurnSecret = "s3cret";
            o.TurnTlsPort = 5349;
            o.TurnTtlSeconds = 600;
        });
        await using var client = await server.OnlineUserAsync("caller");
        var info = await client.RequestAsync("<iq type='get' to='localhost' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.Contains($"var=\"{Ns}\"", info.ToString().Replace('\'', '"'));

        var services = (await client.RequestAsync($"<iq type='get' to='localhost' id='{{id}}'><services xmlns='{Ns}'/></iq>")).GetChild("services", Ns)!;
        Assert.Equal(["stun/udp/3478", "turn/udp/3478", "turn/tcp/3478", "turns/tcp/5349"],
            services.Elements.Select(s => $"{s.GetAttribute("type")}/{s.GetAttribute("transport")}/{s.GetAttribute("port")}"));
        var turn = services.Elements.ElementAt(1);
        var username = turn.GetAttribute("username")!;
        var expiry = long.Parse(username[..username.IndexOf(':')]);
        Assert.Equal(client.Bare, username[(username.IndexOf(':') + 1)..]);
        Assert.InRange(expiry - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 590, 601);
        Assert.Equal(Convert.ToBase64String(HMACSHA1.HashData("s3cret"u8, Encoding.UTF8.GetBytes(username))), turn.GetAttribute("password"));
        Assert.Equal("1", turn.GetAttribute("restricted"));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(expiry), DateTimeOffset.Parse(turn.GetAttribute("expires")!));

        var filtered = (await client.RequestAsync($"<iq type='get' to='localhost' id='{{id}}'><services xmlns='{Ns}' type='stun'/></iq>")).GetChild("services", Ns)!;
        Assert.Single(filtered.Elements);

        var credentials = (await client.RequestAsync($"<iq type='get' to='localhost' id='{{id}}'><credentials xmlns='{Ns}'><service host='turn.example.org' type='turns'/></credentials></iq>")).GetChild("credentials", Ns)!;
        Assert.Equal("5349", Assert.Single(credentials.Elements).GetAttribute("port"));
        (await client.RequestAsync($"<iq type='get' to='localhost' id='{{id}}'><credentials xmlns='{Ns}'><service host='other.example.org' type='turn'/></credentials></iq>")).AssertError("item-not-found");

        var policy = Encoding.UTF8.GetString(server.Host.Server.Policy.Current.Published.Json);
        Assert.Contains("never through this server", policy);
        Assert.Contains("expire after 600 seconds", policy);
    }
}
