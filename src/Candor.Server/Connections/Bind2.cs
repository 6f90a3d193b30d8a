using System.Security.Cryptography;
using Candor.Server.Modules.ClientState;
using Candor.Server.Modules.Carbons;
using Candor.Server.Modules.StreamManagement;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Connections;

/// <summary>
/// Bind 2 (XEP-0386) inside SASL2: the client names a tag in &lt;authenticate/&gt;, the server binds a resource
/// made from it in the same round trip and enables, inline, carbons, stream management and client state.
/// </summary>
public static class Bind2
{
    public const string Namespace = "urn:xmpp:bind:0";
    private const int MaxTagLength = 64;

    /// <summary>What &lt;authentication/&gt; advertises: &lt;inline&gt; with &lt;bind/&gt; (and the features that can be enabled with it) and stream resumption.</summary>
    public static Element Inline()
    {
        var features = new Element("inline", Namespace);
        foreach (var feature in (string[])[CarbonsModule.Namespace, ClientStateModule.Namespace, StreamManagementModule.Namespace])
            features.AddChild("feature").SetAttribute("var", feature);
        // XEP-0198 1.6.1: <sm/> offers stream resumption inline in <authenticate/>.
        return new Element("inline", Ns.Sasl2).Add(new Element("bind", Namespace).Add(features)).Add(new Element("sm", StreamManagementModule.Namespace));
    }

    /// <summary>§3: the server chooses the resource; the client's tag (trimmed, at most 64 characters) starts it.</summary>
    public static string Resource(Element request)
    {
        var tag = request.GetChildText("tag", Namespace)?.Trim() ?? "";
        if (tag.Length > MaxTagLength) tag = tag[..MaxTagLength];
        var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        return tag.Length == 0 ? "candor-" + suffix : tag + "." + suffix;
    }

    /// <summary>The inline requests of a bind: carbons, stream management (with resumption?) and client state.</summary>
    public static (bool Carbons, bool? StreamManagement, bool Inactive) Requests(Element request)
    {
        bool carbons = false, inactive = false;
        bool? sm = null;
        foreach (var child in request.Elements)
        {
            if (child.Is("enable", CarbonsModule.Namespace)) carbons = true;
            else if (child.Is("enable", StreamManagementModule.Namespace)) sm = child.GetAttribute("resume") is "true" or "1";
            else if (child.Is("inactive", ClientStateModule.Namespace)) inactive = true;
        }
        return (carbons, sm, inactive);
    }
}
