namespace Candor.Xmpp;

public static class Ns
{
    public const string Client = "jabber:client";
    public const string Server = "jabber:server";
    /// <summary>XEP-0220 Server Dialback.</summary>
    public const string Dialback = "jabber:server:dialback";
    public const string DialbackFeature = "urn:xmpp:features:dialback";
    public const string Stream = "http://etherx.jabber.org/streams";
    public const string Streams = "urn:ietf:params:xml:ns:xmpp-streams";
    public const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    public const string Tls = "urn:ietf:params:xml:ns:xmpp-tls";
    public const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    /// <summary>XEP-0388, the Extensible SASL Profile.</summary>
    public const string Sasl2 = "urn:xmpp:sasl:2";
    public const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    public const string Session = "urn:ietf:params:xml:ns:xmpp-session";
    public const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";
    public const string SaslChannelBinding = "urn:xmpp:sasl-cb:0";
    public const string Roster = "jabber:iq:roster";
    public const string RosterVersioning = "urn:xmpp:features:rosterver";
    public const string PreApproval = "urn:xmpp:features:pre-approval";
    public const string DiscoInfo = "http://jabber.org/protocol/disco#info";
    public const string DiscoItems = "http://jabber.org/protocol/disco#items";
    public const string DataForms = "jabber:x:data";
    public const string Caps = "http://jabber.org/protocol/caps";
    public const string Ping = "urn:xmpp:ping";
    public const string Version = "jabber:iq:version";
    public const string Time = "urn:xmpp:time";
    public const string VCard = "vcard-temp";
    public const string Private = "jabber:iq:private";
    public const string Register = "jabber:iq:register";
    public const string RegisterFeature = "http://jabber.org/features/iq-register";
    public const string Delay = "urn:xmpp:delay";
    public const string Offline = "msgoffline";
}
