using static Candor.Xml.XmlErrorCondition;

namespace Candor.Xml.Tests;

/// <summary>
/// What the differential check against System.Xml found (fuzz/Candor.Fuzz/Differential.cs), kept as regression
/// tests: the XML declaration's grammar, name characters outside ASCII, and the xmlns prefix on elements.
/// </summary>
public class DifferentialFindingTests
{
    private const string Header = RfcFixtures.ClientHeader;

    [Theory]
    [InlineData("<?xml version='1.0' version='1.0'?>")]
    [InlineData("<?xml encoding='UTF-8' version='1.0'?>")]
    [InlineData("<?xml version='1.0' standalone='yes' encoding='UTF-8'?>")]
    [InlineData("<?xml version='1.0' standalone='maybe'?>")]
    [InlineData("<?xml version='1.0' encoding='UTF-8' encoding='UTF-8'?>")]
    [InlineData("<?xml version='1.0:'?>")]
    [InlineData("<?xml version='1.'?>")]
    [InlineData("<?xml version='1.x'?>")]
    [InlineData("<?xml version='2.0'?>")]
    public void The_XML_declaration_follows_its_grammar(string declaration) => Feed.Refused(declaration + Header, NotWellFormed);

    [Theory]
    [InlineData("<?xml version='1.0'?>")]
    [InlineData("<?xml version='1.1'?>")]
    [InlineData("<?xml version=\"1.0\" encoding=\"utf-8\"?>")]
    [InlineData("<?xml version='1.0' standalone='no'?>")]
    [InlineData("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>")]
    public void Valid_declarations_are_accepted(string declaration) => Feed.AllWaysAgree(declaration + Header);

    [Theory]
    [InlineData("a×")]       // U+00D7 is not a name character
    [InlineData("\u0300a")]  // a combining mark cannot start a name
    [InlineData("a\u037E")]  // Greek question mark
    [InlineData("a\u00AD")]  // soft hyphen
    [InlineData("p:\u0300a")] // nor start the local part
    public void Names_with_characters_XML_does_not_allow_are_refused(string name)
    {
        var declare = name.StartsWith("p:", StringComparison.Ordinal) ? " xmlns:p='urn:p'" : "";
        Feed.Refused(Header + $"<message><{name}{declare}/></message>", NotWellFormed);
        Feed.Refused(Header + $"<message {name}='v'{declare}/>", NotWellFormed);
    }

    [Theory]
    [InlineData("é")]
    [InlineData("名前")]
    [InlineData("a\u00B7b")]
    [InlineData("a\u0300")]
    [InlineData("a\uF900")]
    [InlineData("a\U00010000")]
    public void Names_with_characters_of_the_fifth_edition_are_accepted(string name) =>
        Feed.AllWaysAgree(Header + $"<message><{name} {name}='v'/></message>");

    [Fact]
    public void Elements_cannot_have_the_prefix_xmlns() =>
        Feed.Refused(Header + "<message><xmlns:b/></message>", NotWellFormed);
}

/// <summary>Found by the hostile-input suite: the scanner must not wait for the end of an element that is already malformed.</summary>
public class ScannerFindingTests
{
    [Theory]
    [InlineData("<message/ >")]
    [InlineData("<message/x>")]
    [InlineData("<message a='1'/ >")]
    [InlineData("<message><body/ ></message>")]
    public void A_slash_in_a_tag_not_followed_by_gt_is_refused_at_once(string xml) =>
        Feed.Refused(RfcFixtures.ClientHeader + xml, XmlErrorCondition.NotWellFormed);

    [Fact]
    public void A_slash_inside_an_attribute_value_is_data() =>
        Feed.AllWaysAgree(RfcFixtures.ClientHeader + "<message a='/' b=\"/>\"><body>/</body></message>");
}
