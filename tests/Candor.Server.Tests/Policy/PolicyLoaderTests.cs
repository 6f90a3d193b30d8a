using Candor.Server.Modules.Policy;

namespace Candor.Server.Tests.Policy;

/// <summary>The policy file: the minimal form as given, defaults, and refusals that name the line.</summary>
public sealed class PolicyLoaderTests
{
    /// <summary>Found by fuzzing (fuzz/corpus/policy/regression-invalid-utf8-*): invalid UTF-8 escaped as InvalidOperationException.</summary>
    [Theory]
    [InlineData(new byte[] { 0x7B, 0x22, 0x72, 0x75, 0x6C, 0xE5, 0x80, 0x22, 0x3A, 0x5B, 0x5D, 0x7D }, 1)]           // {"rul\xE5\x80":[]}
    [InlineData(new byte[] { 0x7B, 0x0A, 0x22, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6F, 0x6E, 0x22, 0x3A, 0x22, 0xE9, 0x22, 0x7D }, 2)] // Latin-1 "é" on line 2
    [InlineData(new byte[] { 0x7B, 0x7D, 0x0A, 0x2F, 0x2F, 0xFF }, 2)]                                                  // in a comment
    public void A_file_that_is_not_UTF8_is_refused_with_its_line(byte[] json, int line)
    {
        var e = Assert.Throws<PolicyException>(() => PolicyLoader.Parse(json));
        Assert.Equal(line, e.Line);
        Assert.Contains("UTF-8", e.Reason);
    }

    /// <summary>Found by fuzzing (fuzz/corpus/policy/regression-lone-surrogate): "\uDEEE" escaped as InvalidOperationException.</summary>
    [Theory]
    [InlineData("{\n\"version\": \"\\uDEEE\"}", 2)]
    [InlineData("{\"rules\": [{\"id\": \"a\", \"phrases\": [\"x\\uD800\"]}]}", 1)]
    [InlineData("{\"\\uDC00\": 1}", 1)]
    public void A_string_with_half_a_surrogate_pair_is_refused_with_its_line(string json, int line)
    {
        var e = Assert.Throws<PolicyException>(() => PolicyLoader.Parse(json));
        Assert.Equal(line, e.Line);
        Assert.Contains("surrogate", e.Reason);
    }

    [Fact]
    public void The_minimal_form_is_accepted_with_defaults()
    {
        var policy = PolicyLoader.Parse("""{"rules":[{"id":"spam-1","description":"Unsolicited advertising","phrases":["buy now"],"action":"reject"}]}""");
        Assert.Null(policy.Version);
        var rule = Assert.Single(policy.Rules);
        Assert.Equal("spam-1", rule.Id);
        Assert.Equal("Unsolicited advertising", rule.Description);
        Assert.Equal(["buy now"], rule.Phrases);
        Assert.Equal(PolicyAction.Reject, rule.Action);
        Assert.Equal(PolicyWhose.Everyone, rule.Whose);
        Assert.Equal(PolicyFields.Body | PolicyFields.Subject, rule.Where);
        Assert.Equal(PhraseMatch.Word, rule.Match);
        Assert.False(rule.IgnoreSeparators);
        Assert.Equal("Rejected by rule spam-1: Unsolicited advertising", rule.RejectionText);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"rules":[]}""")]
    [InlineData("\uFEFF{ }")]
    [InlineData("""{"version": 3, "rules": [] }""")]
    public void Empty_policies_are_valid(string json) => Assert.Empty(PolicyLoader.Parse(json).Rules);

    [Fact]
    public void Everything_spelled_out()
    {
        var policy = PolicyLoader.Parse("""
            // comments are allowed
            {
              "version": "2025-01",
              "rules": [
                { "id": "a", "description": "A", "regex": "x+y", "where": "subject", "whose": "strangers", "action": "allow",
                  "match": "substring", "ignoreSeparators": true, "phrases": ["p"], "comment": "why" },
              ],
            }
            """);
        Assert.Equal("2025-01", policy.Version);
        var rule = Assert.Single(policy.Rules);
        Assert.Equal(["x+y"], rule.Regex);
        Assert.Equal(PolicyFields.Subject, rule.Where);
        Assert.Equal(PolicyWhose.Strangers, rule.Whose);
        Assert.Equal(PolicyAction.Allow, rule.Action);
        Assert.Equal(PhraseMatch.Substring, rule.Match);
        Assert.True(rule.IgnoreSeparators);
        Assert.Equal(5, rule.Line);
    }

    [Theory]
    [InlineData("{\n  \"rules\": [\n    {\"id\": \"a\",, }\n  ]\n}", 3, "not valid JSON")]
    [InlineData("{\n  \"rules\": [\n", 3, "not valid JSON")]
    [InlineData("", 1, "not valid JSON")]
    [InlineData("[]", 1, "must be a JSON object")]
    [InlineData("{\n \"rulez\": []\n}", 2, "unknown property 'rulez'")]
    [InlineData("{\"rules\":[\n{\"id\":\"a\",\"description\":\"d\",\"pharses\":[\"x\"]}]}", 2, "unknown rule property 'pharses'")]
    [InlineData("{\"rules\":[\n{\"id\":\"a\",\"description\":\"d\",\n\"phrases\":[\"x\"],\n\"action\":\"drop\"}]}", 4, "'action' must be \"reject\" or \"allow\", not \"drop\"")]
    [InlineData("{\"rules\":[\n{\"id\":\"a\",\"description\":\"d\",\"phrases\":[\"x\"]},\n{\"id\":\"a\",\"description\":\"d\",\"phrases\":[\"y\"]}]}", 3, "rule id 'a' is used twice")]
    [InlineData("{\"rules\":[\n\n{\"id\":\"a\",\"phrases\":[\"x\"]}]}", 3, "has no 'description'")]
    [InlineData("{\"rules\":[{\"description\":\"d\",\"phrases\":[\"x\"]}]}", 1, "has no 'id'")]
    [InlineData("{\"rules\":[{\"id\":\"a\",\"description\":\"d\"}]}", 1, "neither 'phrases' nor 'regex'")]
    [InlineData("{\"rules\":[{\"id\":\"a\",\"description\":\"d\",\"phrases\":[\"\"]}]}", 1, "empty string")]
    [InlineData("{\"rules\":[{\"id\":\"a\",\"description\":\"d\",\"phrases\":[1]}]}", 1, "only strings")]
    [InlineData("{\"rules\":[{\"id\":\"a\",\"description\":\"d\",\"phrases\":[\"x\"],\"where\":[\"nick\"]}]}", 1, "not \"nick\"")]
    [InlineData("{\"rules\":[{\"id\":\"a\",\"id\":\"b\"}]}", 1, "'id' is given twice")]
    [InlineData("{\"rules\":{}}", 1, "'rules' must be an array")]
    [InlineData("{} {}", 1, "not valid JSON")]
    public void Refusals_name_the_line_and_the_reason(string json, int line, string reason)
    {
        var e = Assert.Throws<PolicyException>(() => PolicyLoader.Parse(json, "p.json"));
        Assert.Equal(line, e.Line);
        Assert.Contains(reason, e.Reason);
        Assert.StartsWith($"policy file p.json, line {line}: ", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Theory]
    [InlineData("(a)\\\\1", "needs backtracking")]        // back-reference
    [InlineData("(?=a)b", "needs backtracking")]           // look-ahead
    [InlineData("(?>a+)b", "needs backtracking")]          // atomic group
    [InlineData("([a-z", "invalid regex")]
    [InlineData("a*", "matches empty text")]
    public void Regexes_that_could_backtrack_or_match_everything_are_refused(string pattern, string reason)
    {
        var json = "{\"rules\":[\n{\"id\":\"r\",\"description\":\"d\",\"regex\":[\"" + pattern + "\"]}]}";
        var definition = PolicyLoader.Parse(json, "p.json");
        var e = Assert.Throws<PolicyException>(() => new PolicyMatcher(definition, "p.json"));
        Assert.Equal(2, e.Line);
        Assert.Contains(reason, e.Reason);
    }

    [Fact]
    public void Nested_quantifiers_are_accepted_because_matching_is_linear_anyway()
    {
        var definition = PolicyLoader.Parse("""{"rules":[{"id":"r","description":"d","regex":["(a+)+$","(x*)*y"]}]}""");
        _ = new PolicyMatcher(definition);
    }

    [Fact]
    public void A_phrase_of_only_invisible_characters_is_refused()
    {
        var definition = PolicyLoader.Parse("{\"rules\":[{\"id\":\"z\",\"description\":\"d\",\"phrases\":[\"\\u200B\"]}]}");
        var e = Assert.Throws<PolicyException>(() => new PolicyMatcher(definition));
        Assert.Contains("empty once normalized", e.Reason);
    }

    [Fact]
    public void A_missing_file_is_reported()
    {
        var e = Assert.Throws<PolicyException>(() => PolicyLoader.LoadFile("/nonexistent/policy.json"));
        Assert.Contains("/nonexistent/policy.json", e.Message);
    }
}
