using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// Messages to the room that are not group chat: mediated invitations and declines (XEP-0045 §7.8.2) and
/// voice requests with their approval (§7.13, §8.6). Direct invitations (XEP-0249) go from client to client.
/// </summary>
public sealed partial class Room
{
    public const string RequestFormType = MucNs + "#request";

    /// <summary>A non-groupchat message to the room's bare JID; false when it is none of the kinds the room takes.</summary>
    public async ValueTask<bool> ServiceMessageAsync(StanzaEvent ev)
    {
        if (ev.Stanza.GetChild("x", UserNs) is { } user)
        {
            foreach (var invite in user.Elements.Where(e => e.Is("invite", UserNs)).ToList())
                if (!await InviteAsync(ev, invite)) return true;
            foreach (var decline in user.Elements.Where(e => e.Is("decline", UserNs)))
                await DeclineAsync(ev, decline);
            return true;
        }
        if (ev.Stanza.GetChild("x", Ns.DataForms) is { } form && FormValue(form, "FORM_TYPE") == RequestFormType)
        {
            await VoiceRequestAsync(ev, form);
            return true;
        }
        return false;
    }

    private async ValueTask<bool> InviteAsync(StanzaEvent ev, Element invite)
    {
        var inviter = OccupantByJid(ev.From);
        if (inviter is null)
        {
            await ev.ReplyErrorAsync(StanzaError.NotAcceptable, "only occupants may invite to the room");
            return false;
        }
        if (!Jid.TryParse(invite.GetAttribute("to"), out var invitee))
        {
            await ev.ReplyErrorAsync(StanzaError.JidMalformed, "the invitation needs a valid 'to'");
            return false;
        }
        var inviterAffiliation = inviter.Affiliation;
        if (Config.MembersOnly || !Config.AllowInvites)
        {
            if (inviterAffiliation < Affiliation.Admin && !(Config.AllowInvites && inviterAffiliation >= Affiliation.Member))
            {
                await ev.ReplyErrorAsync(StanzaError.Forbidden, "only admins and owners may invite to this room");
                return false;
            }
            // §7.8.2: an invitation to a members-only room by an admin makes the invitee a member.
            if (Config.MembersOnly && AffiliationOf(invitee) < Affiliation.Member && AffiliationOf(invitee) != Affiliation.Outcast)
            {
                _affiliations[invitee.Bare] = Affiliation.Member;
                AnnounceAbsentAffiliation(invitee.Bare, Affiliation.Member, null);
                if (Config.Persistent) await _service.SaveAsync(this);
            }
        }
        var message = new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()).SetAttribute("to", invitee.ToString());
        var x = message.AddChild("x", UserNs);
        var forwarded = x.AddChild("invite").SetAttribute("from", ev.From.Bare.ToString());
        var reason = invite.GetChildText("reason", UserNs);
        if (reason is not null) forwarded.AddChild("reason").AddText(reason);
        if (Config.PasswordProtected) x.AddChild("password").AddText(Config.Password);
        message.AddChild("body", Ns.Client).AddText($"{ev.From.Bare} invites you to the room {Jid}" + (reason is null ? "" : ": " + reason));
        await Server.Router.DeliverAsync(message, Jid, invitee);
        return true;
    }

    private async ValueTask DeclineAsync(StanzaEvent ev, Element decline)
    {
        if (!Jid.TryParse(decline.GetAttribute("to"), out var inviter))
        {
            await ev.ReplyErrorAsync(StanzaError.JidMalformed, "the decline needs a valid 'to'");
            return;
        }
        var message = new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()).SetAttribute("to", inviter.ToString());
        var forwarded = message.AddChild("x", UserNs).AddChild("decline").SetAttribute("from", ev.From.Bare.ToString());
        if (decline.GetChildText("reason", UserNs) is { } reason) forwarded.AddChild("reason").AddText(reason);
        await Server.Router.DeliverAsync(message, Jid, inviter);
    }

    /// <summary>
    /// A visitor asks for voice (§7.13): every moderator gets the request form. A moderator submitting it back
    /// with muc#request_allow true grants it (§8.6).
    /// </summary>
    private async ValueTask VoiceRequestAsync(StanzaEvent ev, Element form)
    {
        var sender = OccupantByJid(ev.From);
        if (sender is null)
        {
            await ev.ReplyErrorAsync(StanzaError.NotAcceptable, "only occupants may request voice");
            return;
        }
        if (sender.IsModerator && FormValue(form, "muc#roomnick") is { } nick)
        {
            if (RoomConfig.IsTrue(FormValue(form, "muc#request_allow") ?? "")
                && await ChangeRoleAsync(sender, nick, Role.Participant, null) is { } refusal)
            {
                var (error, text) = Refusals[refusal];
                await ev.ReplyErrorAsync(error, text);
            }
            return;
        }
        if (sender.Role != Role.Visitor)
        {
            await ev.ReplyErrorAsync(StanzaError.NotAllowed, "you already have voice");
            return;
        }
        foreach (var moderator in _occupants)
        {
            if (!moderator.IsModerator) continue;
            var message = ToOccupant("message", moderator);
            var request = message.AddChild("x", Ns.DataForms).SetAttribute("type", "form");
            request.AddChild("title").AddText("Voice request");
            request.AddChild("instructions").AddText($"{sender.Nick} asks for voice. Allow it?");
            FormField(request, "FORM_TYPE", "hidden", RequestFormType);
            FormField(request, "muc#role", "list-single", "participant");
            if (SeesJids(moderator)) FormField(request, "muc#jid", "jid-single", sender.RealJid.Bare.ToString());
            FormField(request, "muc#roomnick", "text-single", sender.Nick);
            FormField(request, "muc#request_allow", "boolean", "false");
            Send(moderator, message);
        }
    }

    private static string? FormValue(Element form, string var) =>
        form.Elements.FirstOrDefault(f => f.Is("field", Ns.DataForms) && f.GetAttribute("var") == var)?.GetChildText("value", Ns.DataForms);

    private static void FormField(Element form, string var, string type, string value) =>
        form.AddChild("field").SetAttribute("var", var).SetAttribute("type", type).AddChild("value").AddText(value);
}
