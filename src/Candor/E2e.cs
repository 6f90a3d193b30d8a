using Candor.Client;
using Candor.Client.Omemo;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Cli;

/// <summary>
/// OMEMO (urn:xmpp:omemo:2 and the legacy eu.siacs.conversations.axolotl) for chat, send and listen: the state file of each account in
/// <c>$XDG_CONFIG_HOME/candor/omemo/</c>, sealed with <c>CANDOR_OMEMO_PASSPHRASE</c> when set, else with a key in the
/// OS keyring (Secret Service) when one answers, else with a key file of its own beside it (mode 0600);
/// <c>CANDOR_OMEMO_KEY</c> chooses one of the three for a new state.
/// </summary>
internal static class E2e
{
    public const string PassphraseVariable = "CANDOR_OMEMO_PASSPHRASE";
    public const string KeyVariable = "CANDOR_OMEMO_KEY";

    /// <summary>Shown by the help of chat, send and listen.</summary>
    public const string EnvironmentHelp = $"OMEMO state: {PassphraseVariable} seals it with a passphrase; {KeyVariable}=keyring|file|passphrase " +
        "chooses how a new state is sealed (default: the passphrase if set, else the OS keyring if one answers on the D-Bus session bus, else a key file)";

    public static OmemoStateFile StateFile(Jid account)
    {
        var config = Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        var directory = Path.Combine(config.Length == 0 ? "." : config, "candor", "omemo");
        var name = Uri.EscapeDataString(account.Bare.ToString());
        var passphrase = Environment.GetEnvironmentVariable(PassphraseVariable);
        var source = Environment.GetEnvironmentVariable(KeyVariable) switch
        {
            null or "" => OmemoKeySource.Auto,
            "keyring" => OmemoKeySource.Keyring,
            "file" => OmemoKeySource.File,
            "passphrase" => OmemoKeySource.Passphrase,
            var other => throw new UsageException($"{KeyVariable}='{other}': expected keyring, file or passphrase"),
        };
        return new OmemoStateFile(Path.Combine(directory, name + ".state"), string.IsNullOrEmpty(passphrase) ? null : passphrase,
            Path.Combine(directory, name + ".key"), source, new OmemoKeyring(account.Bare.ToString()));
    }

    /// <summary>Publishes this device; null (with a warning) when the server cannot hold OMEMO devices.</summary>
    public static async Task<OmemoClient?> StartAsync(XmppClient client, string command, Action<string> notice, CancellationToken cancellation)
    {
        var omemo = new OmemoClient(client, StateFile(client.Options.Jid));
        omemo.Notice += notice;
        try
        {
            await omemo.StartAsync(cancellation);
            return omemo;
        }
        catch (XmppStanzaException e)
        {
            Console.Error.WriteLine($"candor {command}: warning: OMEMO unavailable (the server refused publishing the device: {e.Message})");
            return null;
        }
    }

    /// <summary>The message to send: encrypted when the recipient publishes OMEMO devices (unless plain is asked for),
    /// else plain unless end-to-end encryption is required. The bool says whether it is encrypted.</summary>
    public static async Task<(Element Message, bool Encrypted)> ComposeAsync(XmppClient client, OmemoClient? omemo, Jid to, string body,
        string type, bool plain, bool require, CancellationToken cancellation)
    {
        if (!plain && omemo is not null && await omemo.SupportsAsync(to, cancellation))
        {
            var encrypted = await omemo.EncryptAsync(to, body, type, cancellation);
            encrypted.AddChild("request", ClientNs.Receipts);
            return (encrypted, true);
        }
        if (require)
            throw new E2eUnavailableException(omemo is null ? "OMEMO is unavailable on this server"
                : $"{to.Bare} publishes no OMEMO device list; not sending without end-to-end encryption (--require-e2e)");
        var message = new Element("message", Ns.Client).SetAttribute("to", to.ToString()).SetAttribute("type", type)
            .SetAttribute("id", XmppClient.NewId());
        message.AddChild("body").AddText(body);
        message.AddChild("request", ClientNs.Receipts);
        return (message, false);
    }

    /// <summary>The readable text of an incoming message: the decrypted body, or the reason it could not be read.</summary>
    public static async Task<Incoming?> ReadAsync(OmemoClient? omemo, ChatMessage m, CancellationToken cancellation)
    {
        if (omemo is not null && await omemo.DecryptAsync(m.Stanza, cancellation) is { } d)
        {
            if (d.Empty) return null;
            return new Incoming(d.Body, true, d.Error, d.SenderDevice, d.Trust, d.Legacy);
        }
        if (m.Stanza.GetChild("encrypted", OmemoClient.Namespace) is not null)
            return new Incoming(null, true, "OMEMO is not available in this client session", null, null, false);
        if (m.Stanza.GetChild("encrypted", OmemoClient.LegacyNamespace) is not null)
            return new Incoming(null, true, "OMEMO is not available in this client session", null, null, true);
        return m.Body is null ? null : new Incoming(m.Body, false, null, null, null, false);
    }

    /// <summary>"[omemo]", "[omemo untrusted]" or "[plain]": the marker in front of each message line.</summary>
    public static string Marker(Incoming i) => !i.Encrypted ? "[plain]"
        : i.Error is not null ? "[omemo: undecryptable]"
        : i.Trust is Trust.Blind or Trust.Verified ? "[omemo]" : "[omemo untrusted]";
}

internal sealed record Incoming(string? Body, bool Encrypted, string? Error, uint? Device, Trust? Trust, bool Legacy)
{
    public string? Namespace => !Encrypted ? null : Legacy ? "legacy" : "2";
}

/// <summary>--require-e2e and no way to encrypt.</summary>
internal sealed class E2eUnavailableException(string message) : Exception(message);
