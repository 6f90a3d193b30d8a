using System.Collections.Concurrent;
using System.Net;
using Candor.Server.Audit;
using Candor.Server.Core;
using Candor.Server.Modules.Policy;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Register;

/// <summary>
/// In-band registration (XEP-0077). Account creation is off unless <c>--allow-registration</c>, and then
/// limited per address per hour (loopback has its own, larger allowance, for the benchmark harness).
/// Changing the password and removing the account are always available to an authenticated account; removal asks for
/// the password again, through XEP-0077's cancellation form.
/// </summary>
public sealed class RegisterModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0077", "2.4", "account creation (off by default, rate-limited), password change, account removal confirmed with the password (cancellation form)"),
    ];

    /// <summary>The FORM_TYPE of the form that confirms an account's removal (XEP-0077 §3.2).</summary>
    public const string CancelFormType = "jabber:iq:register:cancel";

    private readonly ConcurrentDictionary<IPAddress, Queue<DateTimeOffset>> _recent = new();

    public void Register(XmppServer server)
    {
        server.Disco.ServerFeatures.Add(Ns.Register);
        server.StreamFeatures.BeforeAuthentication.Add(() =>
            server.Options.AllowRegistration ? new Element("register", Ns.RegisterFeature) : null);
        server.UnauthenticatedIq[Ns.Register] = (iq, transport) => CreateAccountAsync(server, iq, transport.RemoteAddress);
        IqHandler authenticated = request => ManageAccountAsync(server, request);
        server.Iq.Register(IqScope.Account, "get", "query", Ns.Register, authenticated);
        server.Iq.Register(IqScope.Account, "set", "query", Ns.Register, authenticated);
        server.Iq.Register(IqScope.Server, "get", "query", Ns.Register, authenticated);
        server.Iq.Register(IqScope.Server, "set", "query", Ns.Register, authenticated);
    }

    private async ValueTask<Element> CreateAccountAsync(XmppServer server, Element iq, IPAddress address)
    {
        var type = iq.Type();
        if (type is not ("get" or "set") || iq.Id() is null)
            return Stanza.ErrorFor(iq, StanzaError.BadRequest);
        if (!server.Options.AllowRegistration)
            return Stanza.ErrorFor(iq, StanzaError.ServiceUnavailable, "registration is disabled on this server");
        if (type == "get")
        {
            var form = new Element("query", Ns.Register);
            form.AddChild("instructions").AddText("Choose a user name and password.");
            form.AddChild("username");
            form.AddChild("password");
            return Stanza.ResultFor(iq, form);
        }
        var query = iq.FirstElement!;
        var username = query.GetChildText("username", Ns.Register);
        var password = query.GetChildText("password", Ns.Register);
        if (string.IsNullOrEmpty(username) || string.IsNullOrEmpty(password))
            return Stanza.ErrorFor(iq, StanzaError.NotAcceptable, "username and password are required");
        if (!Jid.TryParse(username + "@" + server.Domain.Domain, out var jid) || jid.Local is null || !jid.IsBare)
            return Stanza.ErrorFor(iq, StanzaError.JidMalformed, "that user name is not allowed");
        // Only accounts created count against the allowance (as in ejabberd and Prosody): a taken name costs nothing.
        if (await server.Accounts.ExistsAsync(jid.Local))
            return Stanza.ErrorFor(iq, StanzaError.Conflict, "that account exists already");
        if (!TakeAllowance(server, address))
            return Stanza.ErrorFor(iq, StanzaError.PolicyViolation, "too many accounts created from your address; try again later");
        if (!await server.Accounts.CreateAsync(jid.Local, password))
            return Stanza.ErrorFor(iq, StanzaError.Conflict, "that account exists already");
        return Stanza.ResultFor(iq);
    }

    private bool TakeAllowance(XmppServer server, IPAddress address)
    {
        var limit = IPAddress.IsLoopback(address) ? server.Options.RegistrationsPerHourLoopback : server.Options.RegistrationsPerHourPerAddress;
        var key = IPAddress.IsLoopback(address) ? IPAddress.Loopback : AddressKeys.Of(address);
        var now = DateTimeOffset.UtcNow;
        var recent = _recent.GetOrAdd(key, _ => new Queue<DateTimeOffset>());
        lock (recent)
        {
            while (recent.Count > 0 && now - recent.Peek() > TimeSpan.FromHours(1)) recent.Dequeue();
            if (recent.Count >= limit) return false;
            recent.Enqueue(now);
            return true;
        }
    }

    private static async ValueTask<Element?> ManageAccountAsync(XmppServer server, IqRequest request)
    {
        var user = request.From.Local;
        if (user is null || (request.To.Local is not null && !request.IsSelf))
            return request.Error(StanzaError.Forbidden, "only the account itself");
        if (!request.IsSet)
        {
            var query = new Element("query", Ns.Register);
            query.AddChild("registered");
            query.AddChild("username").AddText(user);
            query.AddChild("password");
            return request.Result(query);
        }
        if (request.Payload.GetChild("remove", Ns.Register) is not null)
        {
            if (request.Payload.Elements.Skip(1).Any())
                return request.Error(StanzaError.BadRequest, "<remove/> must be the only child of <query/>");
            return CancellationForm(request);
        }
        if (request.Payload.GetChild("x", Ns.DataForms) is { } form && DataForms.Value(form, "FORM_TYPE") == CancelFormType)
            return await RemoveAccountAsync(server, request, form, user);
        var username = request.Payload.GetChildText("username", Ns.Register);
        var password = request.Payload.GetChildText("password", Ns.Register);
        if (string.IsNullOrEmpty(password) || (username is not null && !string.Equals(username, user, StringComparison.OrdinalIgnoreCase)))
            return request.Error(StanzaError.NotAcceptable, "give your own username and a new password");
        await server.Accounts.SetPasswordAsync(user, password);
        await server.Hooks.PasswordChanged.FireAsync(new PasswordChange(user, request.Origin));
        return request.Result();
    }

    /// <summary>
    /// XEP-0077 §3.2: the server asks for more before removing the account, with a form in the error. Candor asks for the
    /// password again (issue 18), so that a session left open on someone else's device is not enough to delete the account.
    /// </summary>
    private static Element CancellationForm(IqRequest request)
    {
        var query = new Element("query", Ns.Register);
        var form = query.AddChild("x", Ns.DataForms).SetAttribute("type", "form");
        form.AddChild("title").AddText("Remove your account");
        form.AddChild("instructions").AddText("Removing the account deletes everything stored for it on this server (contacts, archive, files, keys). "
            + "Enter your password to confirm.");
        DataForms.Field(form, "FORM_TYPE", CancelFormType, "hidden");
        DataForms.Field(form, "username", request.From.Bare.ToString(), "text-single").SetAttribute("label", "Account").AddChild("required");
        DataForms.Field(form, "password", null, "text-private").SetAttribute("label", "Password").AddChild("required");
        // Built here rather than with request.Error: the reply carries the form, not the request's <remove/>.
        var reply = Stanza.ResultFor(request.Stanza, query).SetAttribute("type", "error")
            .SetAttribute("from", request.To.ToString()).SetAttribute("to", request.From.ToString());
        var error = reply.AddChild("error", Ns.Client).SetAttribute("type", StanzaError.NotAllowed.Type);
        error.AddChild(StanzaError.NotAllowed.Condition, Ns.Stanzas);
        error.AddChild("text", Ns.Stanzas).SetAttribute("xml:lang", "en").AddText("submit the form with your password to remove the account");
        return reply;
    }

    /// <summary>The submitted cancellation form: with the account's own name and password, every record of the account goes.</summary>
    private static async ValueTask<Element?> RemoveAccountAsync(XmppServer server, IqRequest request, Element form, string user)
    {
        var username = DataForms.Value(form, "username");
        var password = DataForms.Value(form, "password");
        if (string.IsNullOrEmpty(password))
            return Answer(request, StanzaError.BadRequest, "the password is required");
        if (username is { Length: > 0 } && !string.Equals(username, user, StringComparison.OrdinalIgnoreCase)
            && !string.Equals(username, request.From.Bare.ToString(), StringComparison.OrdinalIgnoreCase))
            return Answer(request, StanzaError.Forbidden, "only the account itself can be removed");
        // Guessing the password through an open session is slowed as guessing it at login is.
        var address = request.Origin?.Transport.RemoteAddress ?? IPAddress.None;
        var delay = server.AuthThrottle.DelayFor(address, user);
        if (delay > TimeSpan.Zero) await Task.Delay(delay);
        if (!await server.Accounts.VerifyPasswordAsync(user, password))
        {
            server.AuthThrottle.RecordFailure(address, user);
            return Answer(request, StanzaError.NotAuthorized, "wrong password: the account was not removed");
        }
        await server.Accounts.RemoveAsync(user);
        server.Uploads?.DeleteOwnedBy(user);
        var index = await server.Audit.AppendAsync(AuditEntry.Actors.Account, AuditActions.AccountRemoved, request.From.Bare.ToString(),
            new Dictionary<string, string> { ["how"] = "in-band (XEP-0077), password confirmed" });
        request.Origin?.Send(request.Result());
        server.EndSessions(user, StreamErrors.NotAuthorized, $"the account was removed by its owner (operator log entry #{index})");
        return null;
    }

    /// <summary>An error that does not echo the submitted form, which holds the password (XEP-0077 §3.3 asks the same of password changes).</summary>
    private static Element Answer(IqRequest request, StanzaError error, string text)
    {
        var reply = request.Error(error, text);
        reply.RemoveChildren(n => n is Element e && e.Is("query", Ns.Register));
        return reply;
    }
}
