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
