using System.CommandLine;
using Candor.Client;
using Candor.Client.Omemo;
using Candor.Xmpp;

namespace Candor.Cli;

/// <summary>
/// <c>candor send --jid ME TO TEXT</c>: one chat message, OMEMO-encrypted when the recipient publishes devices. Exits 0 once the server has processed it: after the
/// message, an XEP-0199 ping to the server is answered only after everything sent before it, so an error
/// bounced for the message (exit code 18) arrives before the answer.
/// </summary>
internal static class SendCommand
{
    public static Command Create()
    {
        var common = new ClientOptions();
        var to = new Argument<string>("TO") { Description = "The recipient, e.g. bob@example.org" };
        var text = new Argument<string>("TEXT") { Description = "The message" };
        var type = new Option<string>("--type") { Description = "Message type: chat or normal", DefaultValueFactory = _ => "chat" };
        var plain = new Option<bool>("--plain") { Description = "Send unencrypted even if the recipient uses OMEMO" };
        var requireE2e = new Option<bool>("--require-e2e") { Description = "Refuse (exit 19) rather than send unencrypted" };
        var command = new Command("send", "Send one message and exit once the server accepted it (exit codes: see 'candor listen --help')");
        command.Add(to);
        command.Add(text);
        command.Add(type);
        command.Add(plain);
        command.Add(requireE2e);
        common.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            try
            {
                var options = common.Load(parse);
                var recipient = ClientOptions.ParseContact(parse.GetValue(to)!, options.Jid);
                var messageType = parse.GetValue(type);
                if (messageType is not ("chat" or "normal")) throw new UsageException("--type must be chat or normal");
                await using var client = ClientOptions.CreateClient(options, "send");
                var log = new Refusals(client);
                await client.ConnectAsync(cancellation);
                if (parse.GetValue(plain) && parse.GetValue(requireE2e)) throw new UsageException("--plain and --require-e2e contradict each other");
                var omemo = parse.GetValue(plain) ? null
                    : await E2e.StartAsync(client, "send", n => Console.Error.WriteLine($"candor send: {n}"), cancellation);
                var (message, encrypted) = await E2e.ComposeAsync(client, omemo, recipient, parse.GetValue(text)!, messageType,
                    parse.GetValue(plain), parse.GetValue(requireE2e), cancellation);
                await client.SendAsync(message, cancellation);
                var id = message.Id()!;
                await client.PingAsync(cancellation: cancellation);
                if (log.For(id) is { } refused)
                    throw new XmppStanzaException(refused.Error!, refused.Stanza);
                // Said once the server had its chance to refuse, so that a failure stays one line.
                Console.Error.WriteLine($"candor send: sent {(encrypted ? "encrypted (OMEMO)" : "unencrypted")} to {recipient}");
                await client.DisconnectAsync(CancellationToken.None);
                return ClientExitCodes.Ok;
            }
            catch (Exception e) when (e is E2eUnavailableException or OmemoException)
            {
                Console.Error.WriteLine($"candor send: not sent: {e.Message}");
                return ClientExitCodes.NotEncrypted;
            }
            catch (XmppStanzaException e)
            {
                Console.Error.WriteLine($"candor send: the message to {parse.GetValue(to)} was refused: {e.Message}");
                return ClientExitCodes.Refused;
            }
            catch (Exception e) when (e is XmppException or UsageException or OperationCanceledException)
            {
                return ClientOptions.Fail("send", e);
            }
        });
        return command;
    }

    /// <summary>Errors bounced for messages we sent.</summary>
    private sealed class Refusals
    {
        private readonly List<ChatMessage> _errors = [];

        public Refusals(XmppClient client) => client.EventReceived += e =>
        {
            if (e is ChatMessage { Error: not null } m) lock (_errors) _errors.Add(m);
        };

        public ChatMessage? For(string id)
        {
            lock (_errors) return _errors.FirstOrDefault(m => m.Id == id);
        }
    }
}
