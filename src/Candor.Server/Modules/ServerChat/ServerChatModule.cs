using System.Runtime.CompilerServices;
using Candor.Server.Core;
using Candor.Server.Modules.Policy;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.ServerChat;

/// <summary>
/// The server's JID as a conversation partner: login notices come from it, and people and clients answer them.
/// Chat states, chat markers and delivery receipts sent to it carry no content and are accepted without a reply.
/// A message with a body gets a short chat answer saying what the server is, and runs plain-text commands that
/// work in every client, also those without ad-hoc support: "sessions" and "end others" run the same commands as
/// the ad-hoc menu, "policy" names the published policy, "help" lists them. Any other text is explained once a
/// minute per session, so that a client that echoes what it receives (a bot) does not talk with the server for ever.
/// </summary>
public sealed class ServerChatModule : IModule
{
    public const string ReceiptsNamespace = "urn:xmpp:receipts";

    public IReadOnlyList<Protocol> Protocols { get; } =
    [
        new("Candor server chat", "0", "plain-text commands in a chat with the server's JID: sessions, end others, policy, help"),
    ];

    /// <summary>Payloads without content: a message to the server made only of these is accepted without an answer.</summary>
    private static readonly HashSet<string> ContentFreeNamespaces =
    [
        "http://jabber.org/protocol/chatstates", // XEP-0085
        "urn:xmpp:chat-markers:0",               // XEP-0333
        ReceiptsNamespace,                       // XEP-0184
        "urn:xmpp:hints",                        // XEP-0334
        "urn:xmpp:sid:0",                        // XEP-0359 origin-id
        "jabber:x:event",                        // XEP-0022, still sent by some clients
    ];

    /// <summary>The plain-text commands that run an ad-hoc command, by the text that runs them.</summary>
    private static readonly Dictionary<string, string> AdHocByText = new(StringComparer.Ordinal)
    {
        ["sessions"] = "list-sessions",
        ["end others"] = "end-other-sessions",
    };

    private static readonly TimeSpan ExplainEvery = TimeSpan.FromMinutes(1);

    /// <summary>When each session was last told what the server is.</summary>
    private readonly ConditionalWeakTable<Session, StrongBox<DateTimeOffset>> _explained = new();

    public void Register(XmppServer server)
    {
        server.Hooks.MessageToHost.Add(ev => OnMessageAsync(server, ev), Priority.Fallback);
    }

    private async ValueTask<bool> OnMessageAsync(XmppServer server, StanzaEvent ev)
    {
        switch (ev.Type)
        {
            case "error":
                return true;
            case "groupchat":
                await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable, "the server is not a chat room");
                return true;
        }
        var body = ev.Stanza.GetChildText("body", Ns.Client);
        if (body is null)
        {
            if (!IsContentFree(ev.Stanza))
                await ev.ReplyErrorAsync(StanzaError.ServiceUnavailable, "the server's address takes text commands (try \"help\") and chat states, markers and receipts");
            return true;
        }
        var local = ev.From.Local is not null && ev.From.Domain == server.Domain.Domain;
        var answer = local ? await RunAsync(server, ev.From, body) : "Commands are for accounts of this server.";
        // Text that is no command is explained once in a while: a client that echoes the explanation gets no answer.
        if (answer is null && FirstExplanationInAWhile(ev.Origin))
            answer = "This is the server, not a person: nobody reads what you write here. " + Help(server);
        if (answer is not null) await server.SendAsync(Chat(ev, answer));
        if (ev.Stanza.GetChild("request", ReceiptsNamespace) is not null && ev.Stanza.Id() is { } id)
        {
            var receipt = new Element("message", Ns.Client).SetAttribute("to", ev.From.ToString()).SetAttribute("id", NewId());
            receipt.AddChild("received", ReceiptsNamespace).SetAttribute("id", id);
            await server.SendAsync(receipt);
        }
        return true;
    }

    private static bool IsContentFree(Element message)
    {
        foreach (var child in message.Elements)
            if (!ContentFreeNamespaces.Contains(child.Namespace) && !child.Is("thread", Ns.Client)) return false;
        return true;
    }

    private bool FirstExplanationInAWhile(Session? origin)
    {
        if (origin is null) return true;
        var last = _explained.GetOrCreateValue(origin);
        var now = DateTimeOffset.UtcNow;
        lock (last)
        {
            if (now - last.Value < ExplainEvery) return false;
            last.Value = now;
            return true;
        }
    }

    /// <summary>The answer to a command; null for text that is none.</summary>
    private static async ValueTask<string?> RunAsync(XmppServer server, Jid requester, string body)
    {
        var text = string.Join(' ', body.ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        if (AdHocByText.TryGetValue(text, out var node) && server.Disco.Commands.TryGetValue(node, out var command))
            return (await command.Execute(requester)).Note;
        return text switch
        {
            "policy" => PolicyModule.Describe(server.Policy),
            "help" => Help(server),
            _ => null,
        };
    }

    private static string Help(XmppServer server) =>
        $"I am {server.Domain} (Candor {server.Version}). I send your login notices and answer these commands, sent as a message:\n" +
        "sessions: the clients of your account, and which are online\n" +
        "end others: end all your other sessions\n" +
        "policy: this server's published policy, its address and SHA-256 digest\n" +
        "help: this list";

    private static Element Chat(StanzaEvent ev, string text)
    {
        var message = new Element("message", Ns.Client)
            .SetAttribute("to", ev.From.ToString())
            .SetAttribute("type", "chat")
            .SetAttribute("id", NewId());
        message.AddChild("body").AddText(text);
        if (ev.Stanza.GetChildText("thread", Ns.Client) is { } thread) message.AddChild("thread").AddText(thread);
        return message;
    }

    private static string NewId() => "server-" + Guid.NewGuid().ToString("N")[..12];
}
