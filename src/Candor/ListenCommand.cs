using System.CommandLine;
using System.Text.Json;
using Candor.Client;
using Candor.Client.Omemo;

namespace Candor.Cli;

/// <summary>
/// <c>candor listen --jid ME [--json]</c>: prints every incoming message with a body, one per line, until Ctrl+C
/// (exit 0), --count messages (exit 0), or the connection is lost (its exit code).
/// </summary>
internal static class ListenCommand
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var common = new ClientOptions();
        var json = new Option<bool>("--json") { Description = "One JSON object per line: {\"from\",\"to\",\"type\",\"body\",\"id\",\"stamp\",\"encrypted\",\"omemo\",\"error\",\"device\",\"trust\"}" };
        var count = new Option<int?>("--count") { Description = "Exit after this many messages" };
        var reconnect = new Option<bool>("--reconnect") { Description = "Reconnect with backoff when the connection is lost" };
        var command = new Command("listen", "Print incoming messages as lines '[omemo] FROM: text' or '[plain] FROM: text' " +
            "(newlines in a body as \\n; a message that cannot be decrypted as '[omemo: undecryptable] FROM: (reason)') or JSON lines. " +
            "Exit codes of chat/send/listen: 0 ok, 1 unexpected, 2 usage, 10 unreachable, 11 timeout, 12 TLS unavailable, " +
            "13 certificate rejected, 14 authentication failed, 15 connection closed by the server, 16 stream error, " +
            "17 malformed XML from the server, 18 message refused, 19 not encrypted (--require-e2e), 130 interrupted. " + E2e.EnvironmentHelp);
        command.Add(json);
        command.Add(count);
        command.Add(reconnect);
        common.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            try
            {
                var options = common.Load(parse);
                if (parse.GetValue(reconnect)) options = options with { Reconnect = new ReconnectPolicy { Enabled = true } };
                var limit = parse.GetValue(count);
                if (limit is <= 0) throw new UsageException("--count must be positive");
                await using var client = ClientOptions.CreateClient(options, "listen");
                var events = client.ReadEventsAsync(cancellation);
                await client.ConnectAsync(cancellation);
                await client.GetRosterAsync(cancellation);
                await client.SendPresenceAsync(cancellation: cancellation);
                var omemo = await E2e.StartAsync(client, "listen", n => Console.Error.WriteLine($"candor listen: {n}"), cancellation);
                if (omemo is not null) Console.Error.WriteLine($"candor listen: OMEMO device {omemo.DeviceId}, fingerprint {omemo.Fingerprint}");
                Console.Error.WriteLine($"candor listen: listening as {client.BoundJid}");
                var seen = 0;
                try
                {
                    await foreach (var e in events)
                    {
                        if (e is ConnectionStateChanged { State: ConnectionState.Reconnecting } r)
                            Console.Error.WriteLine($"candor listen: connection lost ({r.Error?.Message}); reconnecting, attempt {r.Attempt}");
                        if (e is not ChatMessage { Error: null } m || m.Type == "error") continue;
                        if (await E2e.ReadAsync(omemo, m, cancellation) is not { } incoming) continue;
                        var text = incoming.Body?.Replace("\r", "").Replace("\n", "\\n") ?? $"({incoming.Error})";
                        Console.Out.WriteLine(parse.GetValue(json) ? ToJson(m, incoming) : $"{E2e.Marker(incoming)} {m.From?.Bare}: {text}");
                        Console.Out.Flush();
                        if (limit is { } n && ++seen >= n) break;
                    }
                }
                catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
                {
                }
                await client.DisconnectAsync(CancellationToken.None);
                return ClientExitCodes.Ok;
            }
            catch (Exception e) when (e is XmppException or UsageException or OperationCanceledException or OmemoException)
            {
                return ClientOptions.Fail("listen", e);
            }
        });
        return command;
    }

    private static string ToJson(ChatMessage m, Incoming incoming) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["from"] = m.From?.ToString(),
        ["to"] = m.To?.ToString(),
        ["type"] = m.Type,
        ["body"] = incoming.Body,
        ["id"] = m.Id,
        ["stamp"] = (m.Stamp ?? DateTimeOffset.UtcNow).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
        ["encrypted"] = incoming.Encrypted,
        ["omemo"] = incoming.Namespace,
        ["error"] = incoming.Error,
        ["device"] = incoming.Device,
        ["trust"] = incoming.Trust?.ToString().ToLowerInvariant(),
    }, Json);
}
