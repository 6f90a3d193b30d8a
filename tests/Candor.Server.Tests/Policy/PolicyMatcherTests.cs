using System.Runtime.InteropServices;
using Candor.Server.Modules.Policy;

namespace Candor.Server.Tests.Policy;

public sealed class PolicyMatcherTests
{
    private const string Minimal = """{"rules":[{"id":"spam-1","description":"Unsolicited advertising","phrases":["buy now"],"action":"reject"}]}""";

    // The production regex timeout is wall-clock time: on a loaded test machine a first match (which builds the
    // regex's automaton) can exceed it and fail open. These tests are about what matches, so they allow more.
    private static PolicyMatcher Compile(string json) =>
        new(PolicyLoader.Parse(json), "(test)", PolicyMatcher.DefaultFilterMinStates, TimeSpan.FromSeconds(30));

    private static string? Verdict(PolicyMatcher matcher, string body, bool stranger = true, string? subject = null)
    {
        PolicyMatches? matches = null;
        matcher.Match(body, PolicyFields.Body, ref matches);
        if (subject is not null) matcher.Match(subject, PolicyFields.Subject, ref matches);
        return matcher.Decide(matches, stranger)?.Id;
    }

    private static string Rule(string id, string extra, string action = "reject") =>
        $$"""{"id":"{{id}}","description":"d","action":"{{action}}",{{extra}}}""";

    private static PolicyMatcher Rules(params string[] rules) => Compile($$"""{"rules":[{{string.Join(",", rules)}}]}""");

    [Theory]
    [InlineData("Buy now!")]
    [InlineData("BUY NOW")]
    [InlineData("please buy now, friend")]
    [InlineData("ＢＵＹ ＮＯＷ")]
    [InlineData("bu\u200By n\u00ADow")]
    public void The_minimal_policy_rejects_its_phrase(string body) => Assert.Equal("spam-1", Verdict(Compile(Minimal), body));

    [Theory]
    [InlineData("buy nowhere")]      // whole words by default: no Scunthorpe problem
    [InlineData("rebuy now")]
    [InlineData("buy, now")]
    [InlineData("hello")]
    [InlineData("")]
    public void The_minimal_policy_lets_other_text_through(string body) => Assert.Null(Verdict(Compile(Minimal), body));

    [Fact]
    public void Substring_rules_match_inside_words()
    {
        var matcher = Rules(Rule("sub", "\"phrases\":[\"casino\"],\"match\":\"substring\""));
        Assert.Equal("sub", Verdict(matcher, "megacasinos here"));
    }

    [Theory]
    [InlineData("b.a.d", true)]
    [InlineData("B A D!", true)]
    [InlineData("b-a-d word", true)]
    [InlineData("xb.a.d", false)]   // still a whole word: 'x' joins it to a longer one
    [InlineData("badge", false)]
    public void Ignoring_separators_between_letters(string body, bool rejected)
    {
        var matcher = Rules(Rule("sep", "\"phrases\":[\"bad\"],\"ignoreSeparators\":true"));
        Assert.Equal(rejected ? "sep" : null, Verdict(matcher, body));
    }

    [Theory]
    [InlineData("КУПИТЬ СЕЙЧАС!", true)]
    [InlineData("ку\u200Bпить сейчас", true)]
    [InlineData("к у п и т ь сейчас", false)]  // separators count unless the rule ignores them
    [InlineData("скупить сейчас", false)]
    public void Cyrillic(string body, bool rejected)
    {
        var matcher = Rules(Rule("ru", "\"phrases\":[\"Купить сейчас\"]"));
        Assert.Equal(rejected ? "ru" : null, Verdict(matcher, body));
    }

    [Theory]
    [InlineData("请立即购买吧", true)]          // no spaces in Chinese: whole-word needs no boundary there
    [InlineData("立即購買", false)]            // traditional characters are different characters
    [InlineData("ｶﾀｶﾅ割引", true)]             // half-width katakana
    [InlineData("カタカナ割引です", true)]
    public void Cjk(string body, bool rejected)
    {
        var matcher = Rules(Rule("cjk", "\"phrases\":[\"立即购买\",\"カタカナ割引\"]"));
        Assert.Equal(rejected ? "cjk" : null, Verdict(matcher, body));
    }

    [Fact]
    public void Where_limits_the_fields()
    {
        var matcher = Rules(Rule("subj", "\"phrases\":[\"urgent\"],\"where\":[\"subject\"]"));
        Assert.Null(Verdict(matcher, "urgent"));
        Assert.Equal("subj", Verdict(matcher, "hello", subject: "URGENT"));
    }

    [Fact]
    public void Allow_wins_over_reject()
    {
        var matcher = Rules(
            Rule("no-links", "\"phrases\":[\"http\"],\"match\":\"substring\""),
            Rule("own-site", "\"phrases\":[\"https://example.org\"],\"match\":\"substring\"", "allow"));
        Assert.Equal("no-links", Verdict(matcher, "see http://spam.example"));
        Assert.Null(Verdict(matcher, "see https://example.org/page and http://x"));
    }

    [Fact]
    public void Strangers_rules_apply_to_strangers_only()
    {
        var matcher = Rules(Rule("cold", "\"phrases\":[\"crypto\"],\"whose\":\"strangers\""));
        Assert.Equal("cold", Verdict(matcher, "crypto deal", stranger: true));
        Assert.Null(Verdict(matcher, "crypto deal", stranger: false));
    }

    [Fact]
    public async Task The_roster_is_consulted_only_when_a_strangers_rule_matched()
    {
        var matcher = Rules(Rule("cold", "\"phrases\":[\"crypto\"],\"whose\":\"strangers\""), Rule("all", "\"phrases\":[\"spam\"]"));
        var asked = 0;
        ValueTask<bool> Ask()
        {
            asked++;
            return ValueTask.FromResult(true);
        }
        PolicyMatches? matches = null;
        matcher.Match("hello", PolicyFields.Body, ref matches);
        Assert.Null(await matcher.DecideAsync(matches, Ask));
        matcher.Match("spam", PolicyFields.Body, ref matches);
        Assert.Equal("all", (await matcher.DecideAsync(matches, Ask))?.Id);
        Assert.Equal(0, asked);
    }

    [Fact]
    public void The_first_reject_rule_in_the_file_is_reported()
    {
        var matcher = Rules(Rule("first", "\"phrases\":[\"b\"]"), Rule("second", "\"phrases\":[\"a\"]"));
        Assert.Equal("first", Verdict(matcher, "a b"));
    }

    [Theory]
    [InlineData("visit bit.ly/x", true)]
    [InlineData("VISIT BIT.LY/X", true)]
    [InlineData("visit bitxly", false)]
    public void Regex_rules(string body, bool rejected)
    {
        var matcher = Rules(Rule("short", "\"regex\":[\"bit\\\\.ly/\\\\w+\"]"));
        Assert.Equal(rejected ? "short" : null, Verdict(matcher, body));
    }

    [Fact]
    public void Explains_what_matched()
    {
        var matcher = Compile(Minimal);
        PolicyMatches? matches = null;
        matcher.Match("Please ＢＵＹ NOW", PolicyFields.Body, ref matches, explain: true);
        var hit = Assert.Single(matches!.Hits);
        Assert.Equal("spam-1", hit.Rule.Id);
        Assert.Equal("phrase \"buy now\"", hit.Matched);
        Assert.Equal("buy now", hit.Text);
    }

    [Fact]
    public void Omemo_fallback_body_is_not_matched_by_default_rules()
    {
        // The body beside an OMEMO payload is a client's notice; the module skips it (IsEndToEndEncrypted),
        // and the example rules do not catch it even when they would look.
        var omemo = Candor.Server.Storage.StoredStanza.Parse(
            "<message xmlns='jabber:client' to='b@localhost'><body>I sent you an OMEMO encrypted message but your client doesn’t seem to support that.</body>"
            + "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/><payload>AAAA</payload></encrypted></message>");
        Assert.True(Candor.Server.Modules.Policy.PolicyModule.IsEndToEndEncrypted(omemo));
        var plain = Candor.Server.Storage.StoredStanza.Parse("<message xmlns='jabber:client'><body>hi</body></message>");
        Assert.False(Candor.Server.Modules.Policy.PolicyModule.IsEndToEndEncrypted(plain));
    }

    [Fact]
    public void Adversarial_input_takes_linear_time()
    {
        // Many overlapping patterns (a, aa, ..., a×200) in substring and word rules, against a long run of 'a':
        // each character reaches a state with 200 outputs. Settled states and the shared end-of-word check keep
        // the cost per character constant; doubling the text about doubles the time.
        var substrings = string.Join(",", Enumerable.Range(1, 200).Select(n => $"\"{new string('a', n)}z\""));
        var words = string.Join(",", Enumerable.Range(1, 200).Select(n => $"\"{new string('a', n)}\""));
        var matcher = Rules(Rule("sub", $"\"phrases\":[{substrings}],\"match\":\"substring\""), Rule("word", $"\"phrases\":[{words}]"),
            Rule("re", "\"regex\":[\"(a+)+$\", \"(a|aa)+b\"]"));
        // No pattern matches a 50,000-letter word, nor the regexes (no 'b', and '$' is after '!').
        var small = new string('a', 50_000) + "!";
        var large = new string('a', 200_000) + "!";
        Verdict(matcher, small); // warm up
        var t1 = Time(() => Assert.Null(Verdict(matcher, small)));
        var t4 = Time(() => Assert.Null(Verdict(matcher, large)));
        Assert.True(t4.TotalMilliseconds < 5000, $"200,000 characters took {t4.TotalMilliseconds:0} ms");
        Assert.True(t4 < t1 * 12, $"4× the text took {t4 / t1:0.0}× the time ({t1.TotalMilliseconds:0.0} ms, {t4.TotalMilliseconds:0.0} ms)");

        // Substring patterns all reached (and settled) at once; then a whole word at the very end.
        var t = Time(() => Assert.Equal("sub", Verdict(matcher, new string('a', 200_000) + "z a")));
        Assert.True(t.TotalMilliseconds < 5000, $"took {t.TotalMilliseconds:0} ms");
        Assert.Equal("word", Verdict(matcher, new string('a', 200_000) + "! a"));
    }

    // CPU time of this thread, not wall-clock time: on a loaded machine a run can be descheduled for longer
    // than it computes, which says nothing about the matcher. Best of several runs.
    private static TimeSpan Time(Action action)
    {
        var best = TimeSpan.MaxValue;
        for (var i = 0; i < 5; i++)
        {
            var start = ThreadCpuTime();
            action();
            var spent = ThreadCpuTime() - start;
            best = spent < best ? spent : best;
        }
        return best;
    }

    private static TimeSpan ThreadCpuTime()
    {
        const int clockThreadCpuTimeId = 3;
        if (clock_gettime(clockThreadCpuTimeId, out var ts) != 0) throw new InvalidOperationException("clock_gettime failed");
        return TimeSpan.FromTicks(ts.Seconds * TimeSpan.TicksPerSecond + ts.Nanoseconds / 100);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int clock_gettime(int clockId, out Timespec ts);
}
