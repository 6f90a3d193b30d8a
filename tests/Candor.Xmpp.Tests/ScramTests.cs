using System.Text;
using Candor.Xmpp.Sasl;

namespace Candor.Xmpp.Tests;

public class ScramTests
{
    const string CbType = "tls-server-end-point";
    static readonly byte[] CbData = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();

    static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
    static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    public record Vector(ScramAlgorithm Algorithm, string ClientNonce, string ServerNonce, string Salt,
        string ClientFirst, string ServerFirst, string ClientFinal, string ServerFinal);

    // RFC 5802 §5.
    static readonly Vector Rfc5802 = new(ScramAlgorithm.Sha1, "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92",
        "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");

    // RFC 7677 §3.
    static readonly Vector Rfc7677 = new(ScramAlgorithm.Sha256, "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "W22ZaJ0SNY7soEsUEjb6gQ==",
        "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");

    public static TheoryData<string> Vectors => new() { "RFC 5802", "RFC 7677" };

    static Vector Get(string name) => name == "RFC 5802" ? Rfc5802 : Rfc7677;

    [Theory]
    [MemberData(nameof(Vectors))]
    public void ServerMatchesTheRfcExample(string name)
    {
        Vector v = Get(name);
        var credential = ScramCredential.Derive(v.Algorithm, "pencil", Convert.FromBase64String(v.Salt), 4096);
        var server = new ScramServer(v.Algorithm, plus: false, serverOffersPlus: false, null, null, serverNonce: v.ServerNonce);

        server.ReadClientFirst(Utf8(v.ClientFirst));
        Assert.Equal("user", server.Username);
        Assert.Null(server.Authzid);
        Assert.Equal(v.ServerFirst, Text(server.CreateServerFirst(credential)));
        Assert.True(server.VerifyClientFinal(Utf8(v.ClientFinal), out byte[] serverFinal));
        Assert.Equal(v.ServerFinal, Text(serverFinal));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void ClientMatchesTheRfcExample(string name)
    {
        Vector v = Get(name);
        var client = new ScramClient(v.Algorithm, "user", "pencil", clientNonce: v.ClientNonce);

        Assert.Equal(v.ClientFirst, Text(client.CreateClientFirst()));
        Assert.Equal(v.ClientFinal, Text(client.CreateClientFinal(Utf8(v.ServerFirst))));
        Assert.Equal(4096, client.Iterations);
        Assert.True(client.VerifyServerFinal(Utf8(v.ServerFinal)));
    }

    [Theory]
    [InlineData(ScramAlgorithm.Sha1, "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", 20)]
    [InlineData(ScramAlgorithm.Sha256, "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", 32)]
    public void NamesAndSizes(ScramAlgorithm algorithm, string name, string plusName, int hashSize)
    {
        Assert.Equal(name, algorithm.MechanismName(plus: false));
        Assert.Equal(plusName, algorithm.MechanismName(plus: true));
        Assert.Equal(hashSize, algorithm.HashSize());
    }

    // Client and server talking; returns whether the server accepted and the client accepted the server.
    static (bool Server, bool Client) RoundTrip(ScramClient client, ScramServer server, ScramCredential credential)
    {
        server.ReadClientFirst(client.CreateClientFirst());
        byte[] clientFinal = client.CreateClientFinal(server.CreateServerFirst(credential));
        bool accepted = server.VerifyClientFinal(clientFinal, out byte[] serverFinal);
        return (accepted, client.VerifyServerFinal(serverFinal));
    }

    static ScramCredential Credential(ScramAlgorithm algorithm, string password = "pencil") =>
        ScramCredential.Create(algorithm, password, 4096);

    [Theory]
    [InlineData(ScramAlgorithm.Sha1)]
    [InlineData(ScramAlgorithm.Sha256)]
    public void RoundTripWithoutChannelBinding(ScramAlgorithm algorithm)
    {
        var client = new ScramClient(algorithm, "juliet", "pencil");
        var server = new ScramServer(algorithm, plus: false, serverOffersPlus: false, null, null);

        Assert.False(client.Plus);
        Assert.Equal(algorithm.MechanismName(false), client.MechanismName);
        Assert.Equal((true, true), RoundTrip(client, server, Credential(algorithm)));
        Assert.Equal("juliet", server.Username);
    }

    [Theory]
    [InlineData(ScramAlgorithm.Sha1)]
    [InlineData(ScramAlgorithm.Sha256)]
    public void RoundTripWithChannelBinding(ScramAlgorithm algorithm)
    {
        var client = new ScramClient(algorithm, "juliet", "pencil", CbType, CbData, serverSupportsPlus: true);
        var server = new ScramServer(algorithm, plus: true, serverOffersPlus: true, CbType, CbData);

        Assert.True(client.Plus);
        Assert.Equal(algorithm.MechanismName(true), client.MechanismName);
        Assert.StartsWith("p=tls-server-end-point,,", Text(client.CreateClientFirst()));
        Assert.Equal((true, true), RoundTrip(client, server, Credential(algorithm)));
    }

    [Fact]
    public void ClientThatCouldBindSaysSoWhenTheServerDoesNotOfferPlus()
    {
        var client = new ScramClient(ScramAlgorithm.Sha256, "juliet", "pencil", CbType, CbData, serverSupportsPlus: false);
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, CbType, CbData);

        Assert.False(client.Plus);
        Assert.StartsWith("y,,", Text(client.CreateClientFirst()));
        Assert.Equal((true, true), RoundTrip(client, server, Credential(ScramAlgorithm.Sha256)));
    }

    [Fact]
    public void YFlagIsADowngradeWhenTheServerOffersPlus()
    {
        // An attacker removed -PLUS from the offer the client saw.
        var client = new ScramClient(ScramAlgorithm.Sha256, "juliet", "pencil", CbType, CbData, serverSupportsPlus: false);
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: true, CbType, CbData);

        var e = Assert.Throws<SaslException>(() => server.ReadClientFirst(client.CreateClientFirst()));
        Assert.Equal(SaslFailure.NotAuthorized, e.Failure);
    }

    [Fact]
    public void NFlagIsFineWhenTheServerOffersPlus()
    {
        var client = new ScramClient(ScramAlgorithm.Sha256, "juliet", "pencil");
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: true, CbType, CbData);

        Assert.Equal((true, true), RoundTrip(client, server, Credential(ScramAlgorithm.Sha256)));
    }

    [Fact]
    public void ChannelBindingDataMismatchIsNotAuthorized()
    {
        byte[] otherData = [.. CbData.Reverse()];
        var client = new ScramClient(ScramAlgorithm.Sha256, "juliet", "pencil", CbType, otherData, serverSupportsPlus: true);
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: true, serverOffersPlus: true, CbType, CbData);
        server.ReadClientFirst(client.CreateClientFirst());
        byte[] clientFinal = client.CreateClientFinal(server.CreateServerFirst(Credential(ScramAlgorithm.Sha256)));

        var e = Assert.Throws<SaslException>(() => server.VerifyClientFinal(clientFinal, out _));
        Assert.Equal(SaslFailure.NotAuthorized, e.Failure);
    }

    [Fact]
    public void ChannelBindingTypeMismatchIsTheRfc5802UnsupportedTypeError()
    {
        // Not not-authorized: no password was tried yet, and clients show that condition as a wrong password.
        var client = new ScramClient(ScramAlgorithm.Sha256, "juliet", "pencil", "tls-exporter", CbData, serverSupportsPlus: true);
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: true, serverOffersPlus: true, CbType, CbData);

        var e = Assert.Throws<SaslException>(() => server.ReadClientFirst(client.CreateClientFirst()));
        Assert.Equal(SaslFailure.MalformedRequest, e.Failure);
        Assert.StartsWith("unsupported-channel-binding-type", e.Message);
    }

    [Theory]
    [InlineData("n,,n=user,r=abc")]
    [InlineData("y,,n=user,r=abc")]
    public void PlusMechanismRequiresBinding(string clientFirst)
    {
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: true, serverOffersPlus: true, CbType, CbData);

        var e = Assert.Throws<SaslException>(() => server.ReadClientFirst(Utf8(clientFirst)));
        Assert.Equal(SaslFailure.NotAuthorized, e.Failure);
    }

    [Fact]
    public void BindingRequiresThePlusMechanism()
    {
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: true, CbType, CbData);

        var e = Assert.Throws<SaslException>(() => server.ReadClientFirst(Utf8("p=tls-server-end-point,,n=user,r=abc")));
        Assert.Equal(SaslFailure.MalformedRequest, e.Failure);
        Assert.StartsWith("channel-binding-not-supported", e.Message);
    }

    [Fact]
    public void ChannelBindingFlagInCMustMatchTheHeader()
    {
        // The client said 'n' but claims 'y' in c=: RFC 5802 requires c= to repeat the GS2 header exactly.
        var server = new ScramServer(ScramAlgorithm.Sha1, plus: false, serverOffersPlus: false, null, null, serverNonce: Rfc5802.ServerNonce);
        server.ReadClientFirst(Utf8(Rfc5802.ClientFirst));
        server.CreateServerFirst(ScramCredential.Derive(ScramAlgorithm.Sha1, "pencil", Convert.FromBase64String(Rfc5802.Salt), 4096));

        string clientFinal = Rfc5802.ClientFinal.Replace("c=biws", "c=eSws");
        var e = Assert.Throws<SaslException>(() => server.VerifyClientFinal(Utf8(clientFinal), out _));
        Assert.Equal(SaslFailure.NotAuthorized, e.Failure);
    }

    [Theory]
    [InlineData(ScramAlgorithm.Sha1)]
    [InlineData(ScramAlgorithm.Sha256)]
    public void WrongPasswordFails(ScramAlgorithm algorithm)
    {
        var client = new ScramClient(algorithm, "juliet", "pencil");
        var server = new ScramServer(algorithm, plus: false, serverOffersPlus: false, null, null);
        server.ReadClientFirst(client.CreateClientFirst());
        byte[] clientFinal = client.CreateClientFinal(server.CreateServerFirst(Credential(algorithm, "crayon")));

        Assert.False(server.VerifyClientFinal(clientFinal, out byte[] serverFinal));
        Assert.Equal("e=invalid-proof", Text(serverFinal));
        Assert.False(client.VerifyServerFinal(serverFinal));
    }

    [Fact]
    public void WrongNonceIsNotAuthorized()
    {
        var server = new ScramServer(ScramAlgorithm.Sha1, plus: false, serverOffersPlus: false, null, null, serverNonce: Rfc5802.ServerNonce);
        server.ReadClientFirst(Utf8(Rfc5802.ClientFirst));
        server.CreateServerFirst(ScramCredential.Derive(ScramAlgorithm.Sha1, "pencil", Convert.FromBase64String(Rfc5802.Salt), 4096));

        string clientFinal = Rfc5802.ClientFinal.Replace("VvWVs7j", "VvWVs7k");
        var e = Assert.Throws<SaslException>(() => server.VerifyClientFinal(Utf8(clientFinal), out _));
        Assert.Equal(SaslFailure.NotAuthorized, e.Failure);
    }

    [Fact]
    public void AuthzidAndEscapedUsernameRoundTrip()
    {
        var client = new ScramClient(ScramAlgorithm.Sha256, "a,b=c", "pencil", authzid: "admin@example.com");
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);

        Assert.Equal("n,a=admin@example.com,n=a=2Cb=3Dc,", Text(client.CreateClientFirst())[..34]);
        Assert.Equal((true, true), RoundTrip(client, server, Credential(ScramAlgorithm.Sha256)));
        Assert.Equal("a,b=c", server.Username);
        Assert.Equal("admin@example.com", server.Authzid);
    }

    [Fact]
    public void IgnoresUnknownOptionalExtensions()
    {
        var server = new ScramServer(ScramAlgorithm.Sha1, plus: false, serverOffersPlus: false, null, null, serverNonce: Rfc5802.ServerNonce);
        server.ReadClientFirst(Utf8(Rfc5802.ClientFirst + ",x=whatever"));
        server.CreateServerFirst(ScramCredential.Derive(ScramAlgorithm.Sha1, "pencil", Convert.FromBase64String(Rfc5802.Salt), 4096));

        // The proof covers the exact messages, so an extra extension changes the AuthMessage and the proof fails.
        Assert.False(server.VerifyClientFinal(Utf8(Rfc5802.ClientFinal), out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("n")]
    [InlineData("n,,")]
    [InlineData("n,,n=user")]
    [InlineData("n,,n=user,")]
    [InlineData("x,,n=user,r=abc")]
    [InlineData("N,,n=user,r=abc")]
    [InlineData(",,n=user,r=abc")]
    [InlineData("p=,,n=user,r=abc")]
    [InlineData("p=tls server,,n=user,r=abc")]
    [InlineData("n,a,n=user,r=abc")]
    [InlineData("n,a=,n=user,r=abc")]
    [InlineData("n,b=x,n=user,r=abc")]
    [InlineData("n,a=x=,n=user,r=abc")]
    [InlineData("n,,r=abc,n=user")]
    [InlineData("n,,n=,r=abc")]
    [InlineData("n,,n=us=er,r=abc")]
    [InlineData("n,,n=us=2c,r=abc")]
    [InlineData("n,,n=user=,r=abc")]
    [InlineData("n,,n=user,r=")]
    [InlineData("n,,n=user,r=a b")]
    [InlineData("n,,n=user,r=a\u00E9")]
    [InlineData("n,,n=user,r=a\tb")]
    [InlineData("n,,m=ext,n=user,r=abc")]
    [InlineData("n,,n=user,r=abc,m=ext")]
    [InlineData("n,,n=user,r=abc,=x")]
    [InlineData("n,,n=user,r=abc,1=x")]
    [InlineData("n,,n=user,r=abc,x")]
    [InlineData("n,,n=user,r=abc,")]
    [InlineData("n,,n=us\0er,r=abc")]
    [InlineData("n,, n=user,r=abc")]
    [InlineData("n,,n=user, r=abc")]
    public void MalformedClientFirst(string clientFirst)
    {
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);

        var e = Assert.Throws<SaslException>(() => server.ReadClientFirst(Utf8(clientFirst)));
        Assert.Equal(SaslFailure.MalformedRequest, e.Failure);
    }

    [Fact]
    public void ClientFirstMustBeUtf8()
    {
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);

        var e = Assert.Throws<SaslException>(() => server.ReadClientFirst([.. "n,,n=us"u8, 0xFF, .. "er,r=abc"u8]));
        Assert.Equal(SaslFailure.MalformedRequest, e.Failure);
    }

    [Theory]
    [InlineData("")]
    [InlineData("c=biws")]
    [InlineData("c=biws,r={nonce}")]
    [InlineData("c=biws,r={nonce},p=")]
    [InlineData("c=biws,r={nonce},p=***")]
    [InlineData("c=biws,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts")]
    [InlineData("c=biws,r={nonce},p=v0X8 v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=biws,r={nonce},p=AAAA")]
    [InlineData("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")]
    [InlineData("r={nonce},c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=bi ws,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=biw,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=biws,r={nonce},m=x,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=biws,r={nonce},x,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    [InlineData("c=biws,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=,x=y")]
    [InlineData("c=biws,,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")]
    public void MalformedClientFinal(string template)
    {
        var server = new ScramServer(ScramAlgorithm.Sha1, plus: false, serverOffersPlus: false, null, null, serverNonce: Rfc5802.ServerNonce);
        server.ReadClientFirst(Utf8(Rfc5802.ClientFirst));
        server.CreateServerFirst(ScramCredential.Derive(ScramAlgorithm.Sha1, "pencil", Convert.FromBase64String(Rfc5802.Salt), 4096));
        string clientFinal = template.Replace("{nonce}", Rfc5802.ClientNonce + Rfc5802.ServerNonce);

        var e = Assert.Throws<SaslException>(() => server.VerifyClientFinal(Utf8(clientFinal), out _));
        Assert.Equal(SaslFailure.MalformedRequest, e.Failure);
    }

    [Fact]
    public void UnknownUserGetsAStableFakeSaltAndFails()
    {
        byte[] secret = Utf8("server secret");
        string SaltFor(string username)
        {
            var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);
            server.ReadClientFirst(Utf8($"n,,n={username},r=abc"));
            return Text(server.CreateServerFirstForUnknownUser(secret)).Split(',')[1];
        }

        Assert.Equal(SaltFor("romeo"), SaltFor("romeo"));
        Assert.NotEqual(SaltFor("romeo"), SaltFor("tybalt"));
        Assert.Equal(ScramCredential.SaltSize, Convert.FromBase64String(SaltFor("romeo")[2..]).Length);

        var client = new ScramClient(ScramAlgorithm.Sha256, "romeo", "pencil");
        var unknown = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);
        unknown.ReadClientFirst(client.CreateClientFirst());
        byte[] serverFirst = unknown.CreateServerFirstForUnknownUser(secret);
        Assert.EndsWith(",i=4096", Text(serverFirst));
        Assert.False(unknown.VerifyClientFinal(client.CreateClientFinal(serverFirst), out byte[] serverFinal));
        Assert.Equal("e=invalid-proof", Text(serverFinal));
    }

    [Fact]
    public void ServerEnforcesTheOrderOfSteps()
    {
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);
        var credential = Credential(ScramAlgorithm.Sha256);

        Assert.Throws<InvalidOperationException>(() => server.CreateServerFirst(credential));
        Assert.Throws<InvalidOperationException>(() => server.VerifyClientFinal(Utf8("c=biws"), out _));
        server.ReadClientFirst(Utf8("n,,n=user,r=abc"));
        Assert.Throws<InvalidOperationException>(() => server.ReadClientFirst(Utf8("n,,n=user,r=abc")));
        Assert.Throws<ArgumentException>(() => server.CreateServerFirst(Credential(ScramAlgorithm.Sha1)));
    }

    [Fact]
    public void ServerRejectsBadConstructorArguments()
    {
        Assert.Throws<ArgumentException>(() => new ScramServer(ScramAlgorithm.Sha256, plus: true, serverOffersPlus: true, null, null));
        Assert.Throws<ArgumentException>(() => new ScramServer(ScramAlgorithm.Sha256, false, false, null, null, serverNonce: "a,b"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("r=abc")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=,i=4096")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf9,i=4096")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=0")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=-1")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=+4096")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4k")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=99999999999")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=")]
    [InlineData("m=x,r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096,m=x")]
    [InlineData("s=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL3 rfc,s=QSXCR+Q6sek8bf92,i=4096")]
    public void ClientRejectsMalformedServerFirst(string serverFirst)
    {
        var client = new ScramClient(ScramAlgorithm.Sha1, "user", "pencil", clientNonce: Rfc5802.ClientNonce);
        client.CreateClientFirst();

        var e = Assert.Throws<SaslException>(() => client.CreateClientFinal(Utf8(serverFirst)));
        Assert.Equal(SaslFailure.MalformedRequest, e.Failure);
    }

    [Theory]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096")]
    [InlineData("r=other3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdaw,s=QSXCR+Q6sek8bf92,i=4096")]
    [InlineData("e=other-error")]
    public void ClientRejectsAServerThatDoesNotExtendItsNonceOrFails(string serverFirst)
    {
        var client = new ScramClient(ScramAlgorithm.Sha1, "user", "pencil", clientNonce: Rfc5802.ClientNonce);
        client.CreateClientFirst();

        var e = Assert.Throws<SaslException>(() => client.CreateClientFinal(Utf8(serverFirst)));
        Assert.Equal(SaslFailure.NotAuthorized, e.Failure);
    }

    [Fact]
    public void ClientAcceptsLowIterationCountsAndReportsThem()
    {
        var client = new ScramClient(ScramAlgorithm.Sha1, "user", "pencil", clientNonce: Rfc5802.ClientNonce);
        client.CreateClientFirst();

        client.CreateClientFinal(Utf8("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=1,x=ignored"));
        Assert.Equal(1, client.Iterations);
    }

    [Theory]
    [InlineData("v=rmF9pqV8S7suAoZWja4dJRkFsKQ")]
    [InlineData("v=AmF9pqV8S7suAoZWja4dJRkFsKQ=")]
    [InlineData("v=")]
    [InlineData("e=invalid-proof")]
    [InlineData("")]
    [InlineData("rmF9pqV8S7suAoZWja4dJRkFsKQ=")]
    [InlineData("x=rmF9pqV8S7suAoZWja4dJRkFsKQ=")]
    public void ClientRejectsAWrongServerFinal(string serverFinal)
    {
        var client = new ScramClient(ScramAlgorithm.Sha1, "user", "pencil", clientNonce: Rfc5802.ClientNonce);
        client.CreateClientFirst();
        client.CreateClientFinal(Utf8(Rfc5802.ServerFirst));

        Assert.False(client.VerifyServerFinal(Utf8(serverFinal)));
        Assert.True(client.VerifyServerFinal(Utf8(Rfc5802.ServerFinal + ",x=extension")));
    }

    [Fact]
    public void ClientNeedsTheServerFirstBeforeTheServerFinal()
    {
        var client = new ScramClient(ScramAlgorithm.Sha1, "user", "pencil");
        Assert.Throws<InvalidOperationException>(() => client.VerifyServerFinal(Utf8(Rfc5802.ServerFinal)));
    }

    [Theory]
    [InlineData("pen\u00A0cil", "pen cil")]
    [InlineData("pen\u2003cil", "pen cil")]
    [InlineData("pen\u3000cil", "pen cil")]
    [InlineData("caf\u0065\u0301", "caf\u00E9")]
    public void PasswordsArePreparedWithOpaqueString(string password, string equivalent)
    {
        byte[] salt = Utf8("salt");
        Assert.Equal(
            ScramCredential.Derive(ScramAlgorithm.Sha256, equivalent, salt, 4096).StoredKey,
            ScramCredential.Derive(ScramAlgorithm.Sha256, password, salt, 4096).StoredKey);

        var client = new ScramClient(ScramAlgorithm.Sha256, "juliet", password);
        var server = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);
        Assert.Equal((true, true), RoundTrip(client, server, Credential(ScramAlgorithm.Sha256, equivalent)));
    }

    [Fact]
    public void FullwidthPasswordsStayDistinct()
    {
        byte[] salt = Utf8("salt");
        Assert.NotEqual(
            ScramCredential.Derive(ScramAlgorithm.Sha256, "pencil", salt, 4096).StoredKey,
            ScramCredential.Derive(ScramAlgorithm.Sha256, "ｐencil", salt, 4096).StoredKey);
    }

    [Theory]
    [InlineData("")]
    [InlineData("pen\u0000cil")]
    [InlineData("pen\u0007cil")]
    [InlineData("pen\u200Bcil")]
    public void DisallowedPasswordsCannotBeDerived(string password)
    {
        Assert.Throws<ArgumentException>(() => ScramCredential.Derive(ScramAlgorithm.Sha256, password, Utf8("salt"), 4096));
        Assert.False(Credential(ScramAlgorithm.Sha256).Verify(password));
    }

    [Fact]
    public void CredentialsVerifyPlainPasswords()
    {
        var credential = ScramCredential.Create(ScramAlgorithm.Sha1, "pen\u00A0cil", 4096);

        Assert.Equal(ScramCredential.SaltSize, credential.Salt.Length);
        Assert.Equal(20, credential.StoredKey.Length);
        Assert.True(credential.Verify("pen cil"));
        Assert.False(credential.Verify("pencil"));
        Assert.NotEqual(credential.Salt, ScramCredential.Create(ScramAlgorithm.Sha1, "pencil", 4096).Salt);
    }

    [Fact]
    public void DeriveRejectsBadParameters()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ScramCredential.Derive(ScramAlgorithm.Sha1, "pencil", Utf8("salt"), 0));
        Assert.Throws<ArgumentException>(() => ScramCredential.Derive(ScramAlgorithm.Sha1, "pencil", [], 4096));
    }
}
