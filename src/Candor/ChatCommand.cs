using System.CommandLine;
using Candor.Client;
using Candor.Client.Omemo;
using Candor.Xmpp;
using Spectre.Console;

namespace Candor.Cli;

/// <summary><c>candor chat --jid ME</c>: the full-screen terminal client (<see cref="ChatScreen"/>).</summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var common = new ClientOptions();
        var plain = new Option<bool>("--plain") { Description = "Send unencrypted even to contacts who use OMEMO" };
        var requireE2e = new Option<bool>("--require-e2e") { Description = "Refuse to send a message that cannot be encrypted" };
        var command = new Command("chat", "Full-screen chat: contacts with presence, conversations, subscription requests, " +
            "OMEMO encryption by default. Type /help inside for the commands. Exit codes: see 'candor listen --help'");
        command.Add(plain);
        command.Add(requireE2e);
        common.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            XmppClient? client = null;
            try
            {
                if (Console.IsOutputRedirected || Console.IsInputRedirected)
                    throw new UsageException("chat needs a terminal; for scripts use 'candor send' and 'candor listen'");
                var options = common.Load(parse) with { Reconnect = new ReconnectPolicy { Enabled = true, MaxAttempts = 10 } };
                if (parse.GetValue(plain) && parse.GetValue(requireE2e)) throw new UsageException("--plain and --require-e2e contradict each other");
                client = ClientOptions.CreateClient(options, "chat");
                var notices = new List<string>();
                await client.ConnectAsync(cancellation);
                await client.GetRosterAsync(cancellation);
                await client.SendPresenceAsync(cancellation: cancellation);
                var omemo = await E2e.StartAsync(client, "chat", notices.Add, cancellation);
                var screen = new ChatScreen(client, omemo, parse.GetValue(plain), parse.GetValue(requireE2e), notices);
                var error = await screen.RunAsync(cancellation);
                await client.DisconnectAsync(CancellationToken.None);
                return error is null ? ClientExitCodes.Ok : ClientOptions.Fail("chat", error);
            }
            catch (Exception e) when (e is XmppException or UsageException or OperationCanceledException or OmemoException)
            {
                return ClientOptions.Fail("chat", e);
            }
            finally
            {
                if (client is not null) await client.DisposeAsync();
            }
        });
        return command;
    }
}

/// <summary>
/// The chat screen: contacts (presence, unread counts) on the left, the selected conversation on the right,
/// a status pane with subscription requests and notices, and the input line. Rendering is Spectre.Console's live
/// display on the terminal's alternate screen; keys are read on their own thread. Everything that changes the
/// state goes through one queue and is handled on one task, so no locks are needed.
/// </summary>
internal sealed class ChatScreen(XmppClient client, OmemoClient? omemo, bool plain, bool requireE2e, List<string> startupNotices)
{
    // A full-screen program on a terminal: ANSI and interactivity are not left to detection (which turns both off
    // when it sees, for instance, a CI variable in the environment).
    private readonly IAnsiConsole _console = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Ansi = AnsiSupport.Yes,
        Interactive = InteractionSupport.Yes,
        ColorSystem = ColorSystemSupport.Detect,
    });

    private const int StatusLines = 6;
    private const int ContactsWidth = 38;

    private sealed class Line(DateTimeOffset time, string who, string text, string? id, bool mine)
    {
        public DateTimeOffset Time { get; } = time;
        public string Who { get; } = who;
        public string Text { get; set; } = text;
        public string? Id { get; } = id;
        public bool Mine { get; } = mine;
        public bool Delivered { get; set; }
    }

    private sealed class Contact(Candor.Xmpp.Jid jid)
    {
        public Candor.Xmpp.Jid Jid { get; } = jid;
        public string? Name { get; set; }
        public string Subscription { get; set; } = "none";
        public bool InRoster { get; set; }
        public int Unread { get; set; }
        public ChatState? State { get; set; }
        public List<Line> Lines { get; } = [];
    }

    private readonly System.Threading.Channels.Channel<object> _inbox = System.Threading.Channels.Channel.CreateUnbounded<object>();
    private readonly Dictionary<Candor.Xmpp.Jid, Contact> _contacts = [];
    private readonly List<Candor.Xmpp.Jid> _requests = [];
    private readonly Dictionary<Candor.Xmpp.Jid, OmemoGroupChat> _rooms = [];
    private readonly List<string> _status = [];
    private readonly System.Text.StringBuilder _input = new();
    private Candor.Xmpp.Jid? _selected;
    private bool _composing;
    private bool _quit;
    private Exception? _fatal;
    private string _connection = "connecting";

    /// <summary>Runs until /quit or Ctrl+C (null), or until the connection is lost for good (its error).</summary>
    public async Task<Exception?> RunAsync(CancellationToken cancellation)
    {
        client.EventReceived += e => _inbox.Writer.TryWrite(e);
        if (omemo is not null)
        {
            // Raised while the screen's task encrypts or decrypts: straight into the status pane.
            omemo.Notice += n => Notice($"[omemo] {n}");
            Notice($"OMEMO device {omemo.DeviceId}, fingerprint {omemo.Fingerprint}");
        }
        else
        {
            Notice("OMEMO is unavailable on this server: messages are sent unencrypted" + (requireE2e ? " (refused: --require-e2e)" : ""));
        }
        foreach (var n in startupNotices) Notice($"[omemo] {n}");
        foreach (var item in client.Roster) Upsert(item);
        _connection = $"{client.BoundJid} · {client.TlsProtocol} · {client.Mechanism}";
        Notice($"Connected as {client.BoundJid}. Type /help for commands; Tab or ↑/↓ choose a contact.");
        _selected = _contacts.Keys.Order(Comparer<Candor.Xmpp.Jid>.Create((a, b) => string.CompareOrdinal(a.ToString(), b.ToString()))).FirstOrDefault();

        Console.Write("\u001b[?1049h\u001b[H"); // alternate screen: the shell's screen comes back afterwards
        try
        {
            _console.Profile.Height = Math.Max(10, Console.WindowHeight - 1);
            _console.Profile.Width = Math.Max(60, Console.WindowWidth);
            await _console.Live(Render()).AutoClear(false).Overflow(VerticalOverflow.Crop).Cropping(VerticalOverflowCropping.Top)
                .StartAsync(async live =>
                {
                    // Keys are read only once the first frame is out: a console read blocks the console's
                    // one-time terminal setup, which the first write of the live display performs.
                    live.Refresh();
                    _ = Task.Factory.StartNew(ReadKeys, TaskCreationOptions.LongRunning);
                    while (!_quit && _fatal is null && !cancellation.IsCancellationRequested)
                    {
                        try
                        {
                            var item = await _inbox.Reader.ReadAsync(cancellation);
                            await HandleAsync(item);
                            while (_inbox.Reader.TryRead(out var more)) await HandleAsync(more);
                        }
                        catch (OperationCanceledException)
                        {
                            break;
                        }
                        _console.Profile.Height = Math.Max(10, Console.WindowHeight - 1);
                        _console.Profile.Width = Math.Max(60, Console.WindowWidth);
                        live.UpdateTarget(Render());
                        live.Refresh();
                    }
                });
        }
        finally
        {
            Console.Write("\u001b[?1049l");
        }
        return _fatal;
    }

    private void ReadKeys()
    {
        while (!_quit)
        {
            ConsoleKeyInfo key;
            try
            {
                key = Console.ReadKey(intercept: true);
            }
            catch (InvalidOperationException)
            {
                return; // no terminal
            }
            _inbox.Writer.TryWrite(key);
        }
    }

    // ------------------------------------------------------------------ state changes

    private async Task HandleAsync(object item)
    {
        try
        {
            switch (item)
            {
                case ConsoleKeyInfo key:
                    await KeyAsync(key);
                    break;
                case XmppEvent e:
                    await ApplyAsync(e);
                    break;
            }
        }
        catch (Exception e) when (e is XmppException or OmemoException or E2eUnavailableException)
        {
            Notice($"[error] {e.Message}");
        }
    }

    private async Task KeyAsync(ConsoleKeyInfo key)
    {
        switch (key.Key)
        {
            case ConsoleKey.Enter:
                var line = _input.ToString().Trim();
                _input.Clear();
                _composing = false;
                if (line.Length > 0) await SubmitAsync(line);
                return;
            case ConsoleKey.Backspace:
                if (_input.Length > 0) _input.Length--;
                return;
            case ConsoleKey.Escape:
                _input.Clear();
                return;
            case ConsoleKey.Tab or ConsoleKey.DownArrow:
                Cycle(+1);
                return;
            case ConsoleKey.UpArrow:
                Cycle(-1);
                return;
        }
        if (key.KeyChar == '\0' || char.IsControl(key.KeyChar)) return;
        _input.Append(key.KeyChar);
        // XEP-0085: tell the peer we are typing, once per message.
        if (!_composing && _selected is { } to && _input[0] != '/')
        {
            _composing = true;
            await client.SendChatStateAsync(to, ChatState.Composing);
        }
    }

    private void Cycle(int step)
    {
        var order = Ordered();
        if (order.Count == 0) return;
        var index = _selected is null ? -1 : order.FindIndex(c => c.Jid == _selected);
        Select(order[((index + step) % order.Count + order.Count) % order.Count].Jid);
    }

    private void Select(Candor.Xmpp.Jid jid)
    {
        _selected = jid.Bare;
        Get(jid).Unread = 0;
    }

    private async Task SubmitAsync(string line)
    {
        if (!line.StartsWith('/'))
        {
            if (_selected is null)
            {
                Notice("Choose a contact first (Tab, or /msg JID text).");
                return;
            }
            await SendAsync(_selected, line);
            return;
        }
        var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        var verb = parts[0].ToLowerInvariant();
        var self = client.BoundJid!;
        Candor.Xmpp.Jid? Arg()
        {
            if (parts.Length < 2)
            {
                Notice($"{verb} needs a JID");
                return null;
            }
            try
            {
                return ClientOptions.ParseContact(parts[1], self).Bare;
            }
            catch (UsageException e)
            {
                Notice(e.Message);
                return null;
            }
        }
        switch (verb)
        {
            case "/quit" or "/exit":
                _quit = true;
                break;
            case "/help":
                Notice("/msg JID text · /open JID · /add JID [name] · /remove JID · /accept JID · /deny JID · /who · /quit");
                Notice("OMEMO: /devices [JID] · /verify JID FINGERPRINT · /distrust JID DEVICE · /trust JID DEVICE");
                Notice("Group chat (OMEMO, members-only non-anonymous rooms only): /join ROOM [nick], then /msg ROOM text");
                Notice("Text without a leading / goes to the selected contact; Tab, ↑ and ↓ choose one.");
                break;
            case "/who":
                var any = false;
                foreach (var c in Ordered().Where(c => c.InRoster))
                {
                    any = true;
                    var resources = client.PresenceOf(c.Jid);
                    var presence = resources.Count == 0 ? "offline"
                        : string.Join(", ", resources.Select(p => $"{p.From.Resource}: {p.Label}{(p.Status is null ? "" : $" ({p.Status})")}"));
                    Notice($"{c.Jid} [{c.Subscription}] {presence}");
                }
                if (!any) Notice("Your contact list is empty: /add JID");
                break;
            case "/msg" when Arg() is { } to:
                Select(to);
                if (parts.Length > 2) await SendAsync(to, parts[2]);
                break;
            case "/open" or "/select" when Arg() is { } jid:
                Select(jid);
                break;
            case "/add" when Arg() is { } jid:
                await client.SetRosterItemAsync(jid, parts.Length > 2 ? parts[2] : null);
                await client.SubscribeAsync(jid);
                Select(jid);
                Notice($"Added {jid}; asked to see their presence.");
                break;
            case "/remove" when Arg() is { } jid:
                await client.RemoveRosterItemAsync(jid);
                Notice($"Removed {jid}.");
                break;
            case "/accept" when Arg() is { } jid:
                await client.AcceptSubscriptionAsync(jid);
                _requests.Remove(jid);
                // Most people who let someone see their presence want to see theirs too.
                if (!_contacts.TryGetValue(jid, out var known) || known.Subscription is "none" or "from")
                    await client.SubscribeAsync(jid);
                Notice($"{jid} may now see your presence.");
                break;
            case "/deny" when Arg() is { } jid:
                await client.DenySubscriptionAsync(jid);
                _requests.Remove(jid);
                Notice($"Refused {jid}.");
                break;
            case "/join" when omemo is null:
                Notice("OMEMO is unavailable in this session: /join is for OMEMO group chats");
                break;
            case "/join" when omemo is { } o && Arg() is { } room:
                var nick = parts.Length > 2 ? parts[2] : self.Local ?? "me";
                var joined = await OmemoGroupChat.JoinAsync(client, o, room, nick);
                _rooms[room] = joined;
                Select(room);
                Notice($"Joined {room} as {nick}: messages there are OMEMO-encrypted for its members' devices");
                break;
            case "/devices" or "/verify" or "/distrust" or "/trust" when omemo is null:
                Notice("OMEMO is unavailable in this session");
                break;
            case "/devices" when omemo is { } o:
                var of = parts.Length > 1 ? Arg() : self.Bare;
                if (of is null) break;
                var ids = (await o.DeviceListAsync(of)).Union(await o.DeviceListAsync(of, legacy: true)).ToList();
                if (ids.Count == 0) Notice($"{of} publishes no OMEMO devices");
                var ofDevices = o.State.Devices.GetValueOrDefault(of.ToString());
                foreach (var id in ids.Where(id => of != self.Bare || id != o.DeviceId))
                    Notice(ofDevices?.GetValueOrDefault(id) is { } d
                        ? $"{of} device {id}: {OmemoState.Fingerprint(d.IdentityKey)} [{d.Trust.ToString().ToLowerInvariant()}]"
                        : $"{of} device {id}: fingerprint known after the first message");
                if (of == self.Bare) Notice($"this device {o.DeviceId}: {o.Fingerprint}");
                break;
            case "/verify" when omemo is { } o && Arg() is { } jid:
                var fingerprint = parts.Length > 2 ? parts[2] : "";
                var match = o.State.Devices.GetValueOrDefault(jid.ToString())?
                    .FirstOrDefault(d => OmemoState.SameFingerprint(OmemoState.Fingerprint(d.Value.IdentityKey), fingerprint));
                if (match is not { Value: not null } found) Notice($"No device of {jid} has the fingerprint '{fingerprint}' (compare with /devices {jid})");
                else
                {
                    o.SetTrust(jid.ToString(), found.Key, Trust.Verified);
                    Notice($"Verified {jid} device {found.Key}. New devices of {jid} now need /trust.");
                }
                break;
            case "/distrust" or "/trust" when omemo is { } o && Arg() is { } jid:
                if (parts.Length < 3 || !uint.TryParse(parts[2], out var device)) Notice($"{verb} JID DEVICE (the id /devices shows)");
                else
                {
                    o.SetTrust(jid.ToString(), device, verb == "/trust" ? Trust.Blind : Trust.Distrusted);
                    Notice($"{jid} device {device} is now {(verb == "/trust" ? "trusted" : "distrusted: not encrypted to")}");
                }
                break;
            case "/msg" or "/open" or "/select" or "/add" or "/remove" or "/accept" or "/deny" or "/verify" or "/distrust" or "/trust" or "/join":
                break; // Arg() said what was missing
            default:
                Notice($"Unknown command {verb}; /help lists them.");
                break;
        }
    }

    private async Task SendAsync(Candor.Xmpp.Jid to, string text)
    {
        if (_rooms.TryGetValue(to.Bare, out var room))
        {
            var sent = await room.SendAsync(text);
            Get(to).Lines.Add(new Line(DateTimeOffset.Now, "me", $"[omemo] {text}", sent.Id(), mine: true));
            return;
        }
        var (message, encrypted) = await E2e.ComposeAsync(client, omemo, to, text, "chat", plain, requireE2e, CancellationToken.None);
        message.AddChild("active", ClientNs.ChatStates);
        await client.SendAsync(message);
        Get(to).Lines.Add(new Line(DateTimeOffset.Now, "me", $"{(encrypted ? "[omemo]" : "[plain]")} {text}", message.Id(), mine: true));
    }

    private async Task ApplyAsync(XmppEvent e)
    {
        switch (e)
        {
            case ChatMessage { Error: { } error } m when m.From is not null:
                var failed = Get(m.From).Lines.FirstOrDefault(l => l.Mine && l.Id == m.Id);
                Get(m.From).Lines.Add(new Line(DateTimeOffset.Now, "!", $"not delivered{(failed is null ? "" : $" ('{failed.Text}')")}: {error}", null, false));
                break;
            case ChatMessage m when m.From is not null && _rooms.TryGetValue(m.From.Bare, out var room):
                // The room reflects this device's own messages: their line is there already.
                if (m.From.Resource is not { } nick || nick == room.Nick) break;
                var read = await room.DecryptAsync(m);
                var text = read is null ? (m.Body is null ? null : $"[plain] {m.Body}")
                    : read.Empty ? null : $"{(read.Failed ? "[omemo: undecryptable]" : "[omemo]")} {read.Body ?? $"({read.Error})"}";
                if (text is not null) Get(m.From).Lines.Add(new Line(m.Stamp?.ToLocalTime() ?? DateTimeOffset.Now, nick, text, m.Id, false));
                break;
            case ChatMessage m when m.From is not null:
                var contact = Get(m.From);
                contact.State = m.State;
                if (await E2e.ReadAsync(omemo, m, CancellationToken.None) is not { } incoming) break;
                contact.Lines.Add(new Line(m.Stamp?.ToLocalTime() ?? DateTimeOffset.Now, m.From.Bare.ToString(),
                    $"{E2e.Marker(incoming)} {incoming.Body ?? $"({incoming.Error})"}", m.Id, false));
                if (_selected is null) Select(m.From);
                else if (_selected != contact.Jid) contact.Unread++;
                break;
            case ReceiptReceived r when r.From is not null:
                foreach (var l in Get(r.From).Lines)
                    if (l.Mine && l.Id == r.Id) l.Delivered = true;
                break;
            case PresenceUpdate p:
                if (p.From.Bare != client.BoundJid?.Bare) Get(p.From);
                break;
            case SubscriptionEvent { Kind: SubscriptionKind.Subscribe } s:
                if (!_requests.Contains(s.From)) _requests.Add(s.From);
                Notice($"{s.From} asks to see your presence: /accept {s.From} or /deny {s.From}");
                break;
            case SubscriptionEvent s:
                Notice(s.Kind switch
                {
                    SubscriptionKind.Subscribed => $"{s.From} accepted: you see their presence.",
                    SubscriptionKind.Unsubscribed => $"{s.From} refused or cancelled your subscription.",
                    _ => $"{s.From} stopped watching your presence.",
                });
                break;
            case RosterPush { Removed: true } push:
                if (_contacts.TryGetValue(push.Item.Jid, out var gone))
                {
                    gone.InRoster = false;
                    gone.Subscription = "none";
                }
                break;
            case RosterPush push:
                Upsert(push.Item);
                break;
            case ConnectionStateChanged { State: ConnectionState.Disconnected } c:
                _connection = $"DISCONNECTED: {c.Error?.Message ?? "closed"}";
                if (c.Error is not null) Notice($"Connection lost: {c.Error.Message}");
                break;
            case ConnectionStateChanged { State: ConnectionState.Reconnecting } c:
                _connection = $"reconnecting (attempt {c.Attempt})";
                break;
            case ConnectionStateChanged { State: ConnectionState.Reconnected }:
                _connection = $"{client.BoundJid} · {client.TlsProtocol} · {client.Mechanism}";
                Notice("Reconnected.");
                break;
        }
        if (client.Ended.IsCompleted && client.Ended.Result is { } fatal) _fatal = fatal;
    }

    private void Upsert(RosterItem item)
    {
        var contact = Get(item.Jid);
        contact.Name = item.Name;
        contact.Subscription = item.Subscription + (item.PendingOut ? ", asked" : "");
        contact.InRoster = true;
    }

    private Contact Get(Candor.Xmpp.Jid jid)
    {
        var bare = jid.Bare;
        if (!_contacts.TryGetValue(bare, out var contact)) _contacts[bare] = contact = new Contact(bare);
        return contact;
    }

    private List<Contact> Ordered() =>
        [.. _contacts.Values.OrderByDescending(c => client.PresenceOf(c.Jid).Count > 0).ThenBy(c => c.Jid.ToString(), StringComparer.Ordinal)];

    private void Notice(string text)
    {
        _status.Add($"{DateTime.Now:HH:mm} {text}");
        if (_status.Count > 100) _status.RemoveAt(0);
    }

    // ------------------------------------------------------------------ rendering

    private Layout Render()
    {
        var height = _console.Profile.Height;
        var mainHeight = Math.Max(3, height - StatusLines - 2 - 3);
        var layout = new Layout("root").SplitRows(
            new Layout("main").SplitColumns(new Layout("contacts").Size(ContactsWidth), new Layout("chat")),
            new Layout("status").Size(StatusLines + 2),
            new Layout("input").Size(3));
        layout["contacts"].Update(ContactsPanel());
        layout["chat"].Update(ChatPanel(mainHeight - 2));
        layout["status"].Update(StatusPanel());
        layout["input"].Update(new Panel(new Markup($"[bold]>[/] {Markup.Escape(_input.ToString())}[blink]_[/]")).Expand()
            .Header(_selected is null ? "message" : $"to {Markup.Escape(_selected.ToString())}"));
        return layout;
    }

    private Panel ContactsPanel()
    {
        var lines = new List<string>();
        foreach (var c in Ordered())
        {
            var presence = client.PresenceOf(c.Jid);
            var best = presence.OrderByDescending(p => p.Priority).FirstOrDefault();
            var label = best?.Label ?? "offline";
            var dot = label switch { "offline" => "[grey]○[/]", "online" or "chat" => "[green]●[/]", _ => "[yellow]●[/]" };
            var unread = c.Unread > 0 ? $" [bold red]({c.Unread})[/]" : "";
            var name = Markup.Escape(c.Jid.ToString());
            if (c.Jid == _selected) name = $"[reverse]{name}[/]";
            lines.Add($"{dot} {name} {label}{unread}");
        }
        if (lines.Count == 0) lines.Add("[grey]no contacts yet: /add JID[/]");
        return new Panel(new Markup(string.Join('\n', lines))).Header("Contacts").Expand();
    }

    private Panel ChatPanel(int rows)
    {
        if (_selected is null || !_contacts.TryGetValue(_selected, out var contact))
            return new Panel(new Markup("[grey]No conversation selected.[/]")).Header("Conversation").Expand();
        var shown = contact.Lines.TakeLast(Math.Max(1, rows)).Select(l =>
        {
            var who = l.Mine ? "[blue]me[/]" : l.Who == "!" ? "[red]![/]" : $"[green]{Markup.Escape(l.Who)}[/]";
            var mark = l.Mine ? (l.Delivered ? " [green]✓[/]" : "") : "";
            return $"[grey]{l.Time:HH:mm:ss}[/] {who}: {Markup.Escape(l.Text)}{mark}";
        }).ToList();
        var header = Markup.Escape(contact.Jid.ToString()) + (contact.State == ChatState.Composing ? " (typing…)" : "");
        return new Panel(new Markup(shown.Count == 0 ? "[grey]No messages yet.[/]" : string.Join('\n', shown))).Header(header).Expand();
    }

    private Panel StatusPanel()
    {
        var lines = new List<string>();
        foreach (var jid in _requests)
            lines.Add($"[yellow]Subscription request from {Markup.Escape(jid.ToString())}: /accept or /deny[/]");
        lines.AddRange(_status.TakeLast(Math.Max(0, StatusLines - lines.Count)).Select(s => Markup.Escape(s)));
        return new Panel(new Markup(string.Join('\n', lines))).Header(Markup.Escape(_connection)).Expand();
    }
}
