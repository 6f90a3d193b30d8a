using System.Collections.Concurrent;
using System.Net;
using Candor.Server.Audit;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Register;

/// <summary>
/// In-band registration (XEP-0077). Account creation is off unless <c>--allow-registration</c>, and then
/// limited per address per hour (loopback has its own, larger allowance, for the benchmark harness).
/// Changing the password and removing the account are always available to an authenticated account.
/// </summary>
public sealed class RegisterModule : IModule
{
    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("XEP-0077", "2.4", "account creation (off by default, rate-limited), password change, account removal"),
    ];

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
            await server.Accounts.RemoveAsync(user);
            server.Uploads?.DeleteOwnedBy(user);
            var index = await server.Audit.AppendAsync(AuditEntry.Actors.Account, AuditActions.AccountRemoved, request.From.Bare.ToString(),
                new Dictionary<string, string> { ["how"] = "in-band (XEP-0077)" });
            request.Origin?.Send(request.Result());
            server.EndSessions(user, StreamErrors.NotAuthorized, $"the account was removed by its owner (operator log entry #{index})");
            return null;
        }
        var username = request.Payload.GetChildText("username", Ns.Register);
        var password = request.Payload.GetChildText("password", Ns.Register);
        if (string.IsNullOrEmpty(password) || (username is not null && !string.Equals(username, user, StringComparison.OrdinalIgnoreCase)))
            return request.Error(StanzaError.NotAcceptable, "give your own username and a new password");
        await server.Accounts.SetPasswordAsync(user, password);
        await server.Hooks.PasswordChanged.FireAsync(new PasswordChange(user, request.Origin));
        return request.Result();
    }
}
