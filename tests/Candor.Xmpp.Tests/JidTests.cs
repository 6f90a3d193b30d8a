using Candor.Xmpp;

namespace Candor.Xmpp.Tests;

public class JidTests
{
    // RFC 7622 §3.5, table 1, with the canonical form each prepares to.
    [Theory]
    [InlineData("juliet@example.com", "juliet@example.com")]
    [InlineData("juliet@example.com/foo", "juliet@example.com/foo")]
    [InlineData("juliet@example.com/foo bar", "juliet@example.com/foo bar")]
    [InlineData("juliet@example.com/foo@bar", "juliet@example.com/foo@bar")]
    [InlineData(@"foo\20bar@example.com", @"foo\20bar@example.com")]
    [InlineData("fussball@example.com", "fussball@example.com")]
    [InlineData("fußball@example.com", "fußball@example.com")]
    [InlineData("π@example.com", "π@example.com")]
    [InlineData("Σ@example.com/foo", "σ@example.com/foo")]
    [InlineData("σ@example.com/foo", "σ@example.com/foo")]
    [InlineData("ς@example.com/foo", "ς@example.com/foo")]
    [InlineData("king@example.com/♚", "king@example.com/♚")]
    [InlineData("example.com", "example.com")]
    [InlineData("example.com/foobar", "example.com/foobar")]
    [InlineData("a.example.com/b@example.net", "a.example.com/b@example.net")]
    // Beyond the table.
    [InlineData("ＪＵＬＩＥＴ@example.com", "juliet@example.com")]
    [InlineData("Juliet@Example.COM/Balcony", "juliet@example.com/Balcony")]
    [InlineData("juliet@example.com/Ｂalcony", "juliet@example.com/Ｂalcony")]
    [InlineData("juliet@example.com/foo\u00A0bar", "juliet@example.com/foo bar")]
    [InlineData("juliet@example.com/e\u0301", "juliet@example.com/é")]
    [InlineData("e\u0301@example.com", "é@example.com")]
    [InlineData("juliet@example.com/a/b", "juliet@example.com/a/b")]
    [InlineData("example.com.", "example.com")]
    [InlineData("juliet@Example.COM./r", "juliet@example.com/r")]
    [InlineData("München.example", "münchen.example")]
    [InlineData("xn--mnchen-3ya.example", "münchen.example")]
    [InlineData("example。com", "example.com")]
    [InlineData("[::1]", "[::1]")]
    [InlineData("[0:0::1]", "[::1]")]
    [InlineData("juliet@[::1]/r", "juliet@[::1]/r")]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("localhost", "localhost")]
    [InlineData("a-b.example", "a-b.example")]
    // A deviation from table 2 of RFC 7622, which lists this as invalid although OpaqueString allows spaces.
    [InlineData("juliet@example.com/ foo", "juliet@example.com/ foo")]
    public void ParsesValidJids(string text, string canonical)
    {
        Jid jid = Jid.Parse(text);

        Assert.Equal(canonical, jid.ToString());
        Assert.Equal(jid, Jid.Parse(canonical));
        Assert.True(Jid.TryParse(text, out Jid? parsed));
        Assert.Equal(jid, parsed);
    }

    [Theory]
    // RFC 7622 §3.5, table 2.
    [InlineData("\"juliet\"@example.com")]
    [InlineData("foo bar@example.com")]
    [InlineData("@example.com/")]
    [InlineData("henryⅣ@example.com")]
    [InlineData("♚@example.com")]
    [InlineData("juliet@")]
    [InlineData("/foobar")]
    // Empty parts.
    [InlineData("")]
    [InlineData("@example.com")]
    [InlineData("foo@")]
    [InlineData("example.com/")]
    [InlineData("foo@/bar")]
    [InlineData(".")]
    [InlineData("@")]
    [InlineData("/")]
    // Disallowed characters in the localpart.
    [InlineData("ju&liet@example.com")]
    [InlineData("ju'liet@example.com")]
    [InlineData("ju:liet@example.com")]
    [InlineData("ju<liet@example.com")]
    [InlineData("ju>liet@example.com")]
    [InlineData("a@b@example.com")]
    [InlineData("foo\u00A0bar@example.com")]
    [InlineData("foo\u3000bar@example.com")]
    [InlineData("foo\tbar@example.com")]
    [InlineData("foo\u200Bbar@example.com")]
    [InlineData("\uE000@example.com")]
    [InlineData("\u0378@example.com")]
    [InlineData("ﬁ@example.com")]
    [InlineData("x²@example.com")]
    // Disallowed characters in the resourcepart.
    [InlineData("juliet@example.com/foo\u0007bar")]
    [InlineData("juliet@example.com/foo\u007Fbar")]
    [InlineData("juliet@example.com/foo\u200Bbar")]
    [InlineData("juliet@example.com/foo\u2028bar")]
    [InlineData("juliet@example.com/\u0378")]
    [InlineData("juliet@example.com/\uE000")]
    // Bad domains.
    [InlineData("exa mple.com")]
    [InlineData("example..com")]
    [InlineData(".example.com")]
    [InlineData("example.com..")]
    [InlineData("exam_ple.com")]
    [InlineData("-example.com")]
    [InlineData("example-.com")]
    [InlineData("[::1")]
    [InlineData("[]")]
    [InlineData("[127.0.0.1]")]
    [InlineData("[fe80::1%eth0]")]
    [InlineData("[example.com]")]
    public void RejectsInvalidJids(string text)
    {
        Assert.False(Jid.TryParse(text, out Jid? jid));
        Assert.Null(jid);
        Assert.Throws<JidFormatException>(() => Jid.Parse(text));
    }

    [Fact]
    public void RejectsLoneSurrogates()
    {
        // Not as theory data: xunit replaces lone surrogates when it serializes test cases.
        Assert.False(Jid.TryParse("\uD800@example.com", out _));
        Assert.False(Jid.TryParse("juliet@example.com/\uDC00", out _));
        Assert.False(Jid.TryParse("juliet@example.com/a\uDC00\uD800", out _));
        Assert.False(Jid.TryParse("juliet@ex\uD800ample.com", out _));
    }

    [Fact]
    public void TryParseOfNullIsFalse() => Assert.False(Jid.TryParse(null, out _));

    [Fact]
    public void SplitsAtTheFirstSlashThenTheFirstAt()
    {
        Jid jid = Jid.Parse("a.example.com/b@example.net");
        Assert.Null(jid.Local);
        Assert.Equal("a.example.com", jid.Domain);
        Assert.Equal("b@example.net", jid.Resource);

        jid = Jid.Parse("juliet@example.com/a@b/c");
        Assert.Equal("juliet", jid.Local);
        Assert.Equal("example.com", jid.Domain);
        Assert.Equal("a@b/c", jid.Resource);
    }

    [Fact]
    public void LimitsEachPartTo1023Bytes()
    {
        Assert.True(Jid.TryParse(new string('a', 1023) + "@example.com", out _));
        Assert.False(Jid.TryParse(new string('a', 1024) + "@example.com", out _));
        Assert.True(Jid.TryParse("example.com/" + new string('a', 1023), out _));
        Assert.False(Jid.TryParse("example.com/" + new string('a', 1024), out _));
        // Bytes, not characters: 512 two-byte characters are 1024 bytes.
        Assert.False(Jid.TryParse("example.com/" + new string('é', 512), out _));
        Assert.False(Jid.TryParse(new string('é', 512) + "@example.com", out _));
        Assert.False(Jid.TryParse(string.Join('.', Enumerable.Repeat(new string('a', 60), 17)), out _));
    }

    [Fact]
    public void LimitsDomainLabelsTo63Characters()
    {
        Assert.True(Jid.TryParse(new string('a', 63) + ".example", out _));
        Assert.False(Jid.TryParse(new string('a', 64) + ".example", out _));
        Assert.False(Jid.TryParse(new string('A', 64) + ".example", out _));
    }

    [Fact]
    public void IdnDomainsInEitherFormAreEqual()
    {
        Jid unicode = Jid.Parse("user@München.example");
        Jid ascii = Jid.Parse("user@xn--mnchen-3ya.example");

        Assert.Equal("münchen.example", unicode.Domain);
        Assert.Equal(unicode, ascii);
        Assert.Equal(unicode.GetHashCode(), ascii.GetHashCode());
    }

    [Fact]
    public void EqualityIsOnPreparedParts()
    {
        Jid a = Jid.Parse("Juliet@Example.com/balcony");
        Jid b = Jid.Parse("juliet@example.com/balcony");

        Assert.True(a == b);
        Assert.False(a != b);
        Assert.True(a.Equals((object)b));
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, Jid.Parse("juliet@example.com/Balcony"));
        Assert.NotEqual(a, Jid.Parse("juliet@example.com"));
        Assert.NotEqual(Jid.Parse("example.com/juliet"), Jid.Parse("juliet@example.com"));
        Assert.False(a == null);
        Assert.True((Jid?)null == null);

        var set = new HashSet<Jid> { a, b, Jid.Parse("JULIET@EXAMPLE.COM/balcony") };
        Assert.Single(set);
    }

    [Fact]
    public void BareDropsTheResourceAndIsCached()
    {
        Jid full = Jid.Parse("juliet@example.com/balcony");
        Jid bare = Jid.Parse("juliet@example.com");

        Assert.False(full.IsBare);
        Assert.True(bare.IsBare);
        Assert.Same(bare, bare.Bare);
        Assert.Same(full.Bare, full.Bare);
        Assert.Equal(bare, full.Bare);
        Assert.Equal("juliet@example.com", full.Bare.ToString());
        Assert.Null(full.Bare.Resource);
    }

    [Fact]
    public void WithResourcePreparesTheResource()
    {
        Jid jid = Jid.Parse("Juliet@example.com/balcony").WithResource("foo\u00A0bar");

        Assert.Equal("juliet@example.com/foo bar", jid.ToString());
        Assert.Equal("foo bar", jid.Resource);
        Assert.Throws<JidFormatException>(() => jid.WithResource(""));
        Assert.Throws<JidFormatException>(() => jid.WithResource("a\u0000b"));
    }

    [Fact]
    public void CreatePreparesEachPart()
    {
        Jid jid = Jid.Create("ＪＵＬＩＥＴ", "Example.COM.", "Balcony");

        Assert.Equal("juliet", jid.Local);
        Assert.Equal("example.com", jid.Domain);
        Assert.Equal("Balcony", jid.Resource);
        Assert.Equal("juliet@example.com/Balcony", jid.ToString());
        Assert.Equal(Jid.Parse("example.com"), Jid.Create(null, "example.com"));
        Assert.Throws<JidFormatException>(() => Jid.Create("", "example.com"));
        Assert.Throws<JidFormatException>(() => Jid.Create("a@b", "example.com"));
        Assert.Throws<JidFormatException>(() => Jid.Create("juliet", ""));
        Assert.Throws<JidFormatException>(() => Jid.Create("juliet", "example.com", ""));
    }

    [Fact]
    public void ACanonicalJidIsItsOwnString()
    {
        const string text = "juliet@example.com/balcony";
        Assert.Same(text, Jid.Parse(text).ToString());
    }

    [Fact]
    public void TheAsciiFastPathAllocatesOnlyTheResult()
    {
        const string text = "juliet@example.com/balcony";
        for (int i = 0; i < 10; i++)
            Jid.Parse(text);

        long before = GC.GetAllocatedBytesForCurrentThread();
        Jid jid = Jid.Parse(text);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The Jid and its three part strings; nothing else.
        Assert.True(allocated <= 200, $"Parse allocated {allocated} bytes.");
        Assert.Equal("juliet", jid.Local);
    }

    [Fact]
    public void UpperCaseAsciiAllocatesOnlyTheResultToo()
    {
        const string text = "Juliet@Example.COM/balcony";
        for (int i = 0; i < 10; i++)
            Jid.Parse(text);

        long before = GC.GetAllocatedBytesForCurrentThread();
        Jid jid = Jid.Parse(text);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated <= 200, $"Parse allocated {allocated} bytes.");
        Assert.Equal("example.com", jid.Domain);
    }

    [Fact]
    public void LongAsciiDomainsFollowTheDnsLimit()
    {
        string label = new string('a', 60);
        Assert.True(Jid.TryParse(string.Join('.', Enumerable.Repeat(label, 4)), out _));
        Assert.False(Jid.TryParse(string.Join('.', Enumerable.Repeat(label, 5)), out _));
        Assert.False(Jid.TryParse(string.Join('.', Enumerable.Repeat(label.ToUpperInvariant(), 5)), out _));
    }
}
