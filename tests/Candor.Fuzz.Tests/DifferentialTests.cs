using System.Text;

namespace Candor.Fuzz.Tests;

/// <summary>
/// Property: for every document, Candor's parser and System.Xml's XmlReader agree on accept or refuse and, when
/// both accept, on the element tree — up to the intended differences listed (and checked) in
/// <see cref="Differential"/>. A few thousand generated documents here; fuzz/run.sh runs many more.
/// </summary>
public class DifferentialTests
{
    public static TheoryData<int> Seeds() => [.. Enumerable.Range(0, 30).Select(i => i * 1000)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Generated_documents_get_the_same_verdict_and_tree(int seed)
    {
        var generator = new XmlishGenerator(seed);
        var accepted = 0;
        for (var i = 0; i < 100; i++)
        {
            var data = generator.Document();
            try
            {
                Differential.Check(data);
            }
            catch (FuzzFinding e)
            {
                Assert.Fail($"seed {seed}, document {i}: {e.Message}");
            }
            if (Differential.Candor(data).Accepted) accepted++;
        }
        // The generator must produce accepted documents too, or the tree comparison tests nothing.
        Assert.InRange(accepted, 5, 95);
    }

    [Fact]
    public void The_corpus_gets_the_same_verdict_and_tree()
    {
        foreach (var file in Corpus.AllFiles())
        {
            try
            {
                Differential.Check(File.ReadAllBytes(file));
            }
            catch (FuzzFinding e)
            {
                Assert.Fail($"{Corpus.Name(file)}: {e.Message}");
            }
        }
    }

    [Theory]
    [InlineData("<message xmlns='jabber:client' to='a@b' type='chat'><body>hi &amp; &#x1F600; <![CDATA[<x>]]></body></message>")]
    [InlineData("<a xmlns:p='urn:p' p:x='1' xml:lang='en' b='&#10;\r\n\t'>\r\n<p:b/>text</a>")]
    [InlineData("<?xml version='1.0' encoding='UTF-8'?><a/>")]
    public void Well_formed_documents_give_identical_trees(string xml)
    {
        var data = Encoding.UTF8.GetBytes(xml);
        var ours = Differential.Candor(data);
        Assert.True(ours.Accepted, ours.Detail);
        Assert.Equal(Differential.SystemXml(data), ours);
    }

    [Theory]
    [InlineData("<a><!-- c --></a>")]
    [InlineData("<a><?pi x?></a>")]
    [InlineData("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>")]
    [InlineData("<a>&lol;</a>")]
    [InlineData("<a xmlns:p=''/>")]
    [InlineData("<a xmlns:xml='urn:x'/>")]
    [InlineData("<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>")]
    [InlineData("<a><b></a></b>")]
    [InlineData("<a/><b/>")]
    [InlineData("<a>]]></a>")]
    public void Both_refuse(string xml)
    {
        var data = Encoding.UTF8.GetBytes(xml);
        Assert.False(Differential.Candor(data).Accepted);
        Assert.False(Differential.SystemXml(data).Accepted);
    }

    /// <summary>
    /// When, not only whether: a mismatched end tag is refused by Candor at that end tag's '&gt;', by System.Xml at its
    /// name's end (which is the same byte unless whitespace follows the name).
    /// </summary>
    [Theory]
    [InlineData("<a><b></a>", 10, 10)]
    [InlineData("<message><body></message><body>more</body></message>", 25, 25)]
    [InlineData("<a><b></b ><c></a  ></c></a>", 20, 18)]
    public void A_mismatched_end_tag_is_refused_by_both_within_that_tag(string xml, int candorAt, int systemXmlAt)
    {
        var data = Encoding.UTF8.GetBytes(xml);
        Assert.Equal(candorAt, Differential.CandorErrorAt(data));
        Assert.Equal(systemXmlAt, Differential.SystemXmlErrorAt(data));
        Differential.Check(data);
    }

    /// <summary>Errors the tree builder finds wait for the end of the element (by design); System.Xml sees them at once.</summary>
    [Theory]
    [InlineData("<a>&lol;<b/></a>")]
    [InlineData("<a b='1' b='2'><c/></a>")]
    public void Other_errors_may_wait_for_the_end_of_the_element(string xml)
    {
        var data = Encoding.UTF8.GetBytes(xml);
        Assert.Equal(data.Length, Differential.CandorErrorAt(data));
        Assert.True(Differential.SystemXmlErrorAt(data) < data.Length);
        Differential.Check(data);
    }

    /// <summary>Each intended difference, so that the list on <see cref="Differential"/> stays true.</summary>
    [Theory]
    [InlineData("<?xml version='1.0' encoding='ISO-8859-1'?><a/>", false, true)]
    [InlineData("<?xml version='1.1'?><a/>", true, false)]
    [InlineData(" <?xml version='1.0'?><a/>", true, false)]
    [InlineData("<a\uF900/>", true, false)]
    [InlineData("<a b\U00010000='1'/>", true, false)]
    [InlineData("<a xml:space='bogus'/>", true, false)]
    [InlineData("<xmlns:a/>", false, true)]
    [InlineData("<?xml version='1.0:'?><a/>", false, true)]
    public void Intended_differences_are_recognized(string xml, bool candorAccepts, bool systemXmlAccepts)
    {
        var data = Encoding.UTF8.GetBytes(xml);
        var (ours, theirs) = (Differential.Candor(data), Differential.SystemXml(data));
        Assert.Equal(candorAccepts, ours.Accepted);
        Assert.Equal(systemXmlAccepts, theirs.Accepted);
        Assert.True(Differential.KnownDifference(data, ours, theirs));
        Differential.Check(data);
    }

    [Fact]
    public void An_unintended_difference_is_reported()
    {
        // A tree that differs is never explained away.
        var data = "<a b='1'/>"u8.ToArray();
        var ours = Differential.Candor(data);
        Assert.False(Differential.KnownDifference(data, ours, new Differential.Outcome(false, "refused: something else")));
    }
}
