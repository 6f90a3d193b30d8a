using System.Security.Cryptography;
using Tmds.DBus.Protocol;

namespace Candor.Client.Omemo;

/// <summary>The OS keyring (or a reason it cannot be used) when it does not answer at all: no session bus, no Secret
/// Service on it, or no answer in time. A keyring that answers but refuses (locked, item gone) is an
/// <see cref="OmemoException"/>.</summary>
public sealed class OmemoKeyringUnavailableException(string message) : OmemoException(message);

/// <summary>
/// The key of one OMEMO state file kept in the OS keyring: the freedesktop Secret Service on the D-Bus session bus
/// (gnome-keyring, KWallet, KeePassXC). One random 256-bit key per account and state file, an item in the default
/// collection with the attributes application=candor, purpose=omemo-state, account=JID, file=state path. The secret
/// travels in a "plain" session: the session bus is a socket only this user can use, and whoever can read its traffic
/// can ask the service for the item anyway (docs/SECURITY.md).
/// </summary>
public sealed class OmemoKeyring(string account, string? busAddress = null)
{
    private const string Service = "org.freedesktop.secrets";
    private const string ServicePath = "/org/freedesktop/secrets";
    private const string ServiceInterface = "org.freedesktop.Secret.Service";
    private const string CollectionInterface = "org.freedesktop.Secret.Collection";
    private const string ItemInterface = "org.freedesktop.Secret.Item";
    private const string PromptInterface = "org.freedesktop.Secret.Prompt";
    private const string NoObject = "/";

    /// <summary>How long the bus and the service (started by D-Bus activation if need be) have to answer.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a user has to answer the keyring's own unlock prompt.</summary>
    public TimeSpan PromptTimeout { get; init; } = TimeSpan.FromMinutes(2);

    public string Label => $"Candor OMEMO key for {account}";

    /// <summary>Makes a new key and stores it (replacing any item of the same account and file).</summary>
    public async Task<byte[]> CreateKeyAsync(string stateFile, CancellationToken cancellation = default)
    {
        using var bus = await ConnectAsync(cancellation);
        var session = await bus.OpenSessionAsync();
        var collection = await bus.CallAsync(ServicePath, ServiceInterface, "ReadAlias", "s", (ref MessageWriter w) => w.WriteString("default"),
            (m, _) => m.GetBodyReader().ReadObjectPathAsString());
        if (collection == NoObject)
            throw new OmemoException("the OS keyring has no default collection to hold the key (create one, e.g. a 'login' keyring, or set CANDOR_OMEMO_KEY=file)");
        await bus.UnlockAsync(collection, PromptTimeout, cancellation);
        var key = RandomNumberGenerator.GetBytes(32);
        var (item, prompt) = await bus.CallAsync(collection, CollectionInterface, "CreateItem", "a{sv}(oayays)b", (ref MessageWriter w) =>
        {
            w.WriteDictionary(new Dictionary<string, VariantValue>
            {
                ["org.freedesktop.Secret.Item.Label"] = Label,
                ["org.freedesktop.Secret.Item.Attributes"] = new Dict<string, string>(Attributes(stateFile)).AsVariantValue(),
            });
            w.WriteStructureStart();
            w.WriteObjectPath(session);
            w.WriteArray(Array.Empty<byte>());
            w.WriteArray(key);
            w.WriteString("application/octet-stream");
            w.WriteBool(true);
        }, (m, _) => { var r = m.GetBodyReader(); return (r.ReadObjectPathAsString(), r.ReadObjectPathAsString()); });
        if (prompt != NoObject) await bus.PromptAsync(prompt, PromptTimeout, cancellation);
        else if (item == NoObject) throw new OmemoException("the OS keyring did not store the key");
        return key;
    }

    /// <summary>The key stored for this account and file; <see cref="OmemoException"/> when the item is gone or
    /// the keyring stays locked.</summary>
    public async Task<byte[]> ReadKeyAsync(string stateFile, CancellationToken cancellation = default)
    {
        using var bus = await ConnectAsync(cancellation);
        var session = await bus.OpenSessionAsync();
        var (unlocked, locked) = await bus.CallAsync(ServicePath, ServiceInterface, "SearchItems", "a{ss}", (ref MessageWriter w) => WriteAttributes(ref w, Attributes(stateFile)),
            (m, _) => { var r = m.GetBodyReader(); return (r.ReadArrayOfObjectPath(), r.ReadArrayOfObjectPath()); });
        string item;
        if (unlocked.Length > 0) item = unlocked[0].ToString();
        else if (locked.Length > 0)
        {
            item = locked[0].ToString();
            await bus.UnlockAsync(item, PromptTimeout, cancellation);
        }
        else throw new OmemoException($"the OS keyring holds no item '{Label}' (application=candor, account={account}, file={stateFile}): it was deleted, or this is another keyring");
        var key = await bus.CallAsync(item, ItemInterface, "GetSecret", "o", (ref MessageWriter w) => w.WriteObjectPath(session), (m, _) =>
        {
            var r = m.GetBodyReader();
            r.AlignStruct();
            r.ReadObjectPath();
            r.ReadArrayOfByte();
            return r.ReadArrayOfByte();
        });
        if (key.Length != 32) throw new OmemoException($"the OS keyring's item '{Label}' holds {key.Length} bytes, not a 32-byte key");
        return key;
    }

    private Dictionary<string, string> Attributes(string stateFile) => new()
    {
        ["application"] = "candor",
        ["purpose"] = "omemo-state",
        ["account"] = account,
        ["file"] = Path.GetFullPath(stateFile),
    };

    private static void WriteAttributes(ref MessageWriter writer, Dictionary<string, string> attributes)
    {
        var start = writer.WriteDictionaryStart();
        foreach (var (name, value) in attributes)
        {
            writer.WriteDictionaryEntryStart();
            writer.WriteString(name);
            writer.WriteString(value);
        }
        writer.WriteDictionaryEnd(start);
    }

    private async Task<Bus> ConnectAsync(CancellationToken cancellation)
    {
        var address = busAddress ?? Environment.GetEnvironmentVariable("DBUS_SESSION_BUS_ADDRESS");
        if (string.IsNullOrEmpty(address)) throw new OmemoKeyringUnavailableException("the OS keyring is unreachable: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)");
        var connection = new DBusConnection(address);
        try
        {
            await connection.ConnectAsync().AsTask().WaitAsync(Timeout, cancellation);
            var bus = new Bus(connection);
            // Also starts the service if the bus knows how to (D-Bus activation), as libsecret does.
            await bus.CallAsync(ServicePath, "org.freedesktop.DBus.Peer", "Ping", null, null, (_, _) => true).WaitAsync(Timeout, cancellation);
            return bus;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            connection.Dispose();
            throw e as OmemoKeyringUnavailableException ?? new OmemoKeyringUnavailableException(
                $"the OS keyring is unreachable: {(e is TimeoutException ? $"no answer within {Timeout.TotalSeconds:0} s" : e.Message)}");
        }
    }

    /// <summary>Writes a call's arguments: by reference, as the writer is a struct that counts what was written.</summary>
    private delegate void BodyWriter(ref MessageWriter writer);

    /// <summary>One connection to the bus and the calls made on it.</summary>
    private sealed class Bus(DBusConnection connection) : IDisposable
    {
        public async Task<T> CallAsync<T>(string path, string @interface, string member, string? signature, BodyWriter? body,
            MessageValueReader<T> reader)
        {
            MessageBuffer message;
            var writer = connection.GetMessageWriter();
            try
            {
                writer.WriteMethodCallHeader(Service, path, @interface, member, signature, MessageFlags.None);
                body?.Invoke(ref writer);
                message = writer.CreateMessage();
            }
            finally
            {
                writer.Dispose();
            }
            try
            {
                return await connection.CallMethodAsync(message, reader);
            }
            catch (DBusErrorReplyException e) when (e.ErrorName == "org.freedesktop.DBus.Error.ServiceUnknown")
            {
                throw new OmemoKeyringUnavailableException("the OS keyring is unreachable: no Secret Service (gnome-keyring, KWallet, KeePassXC) on the D-Bus session bus");
            }
            catch (DBusErrorReplyException e)
            {
                throw new OmemoException($"the OS keyring refused {member}: {e.ErrorMessage} ({e.ErrorName})");
            }
            catch (Exception e) when (e is not (OmemoException or OperationCanceledException))
            {
                throw new OmemoKeyringUnavailableException($"the OS keyring is unreachable: {e.Message}");
            }
        }

        public Task<string> OpenSessionAsync() =>
            CallAsync(ServicePath, ServiceInterface, "OpenSession", "sv", (ref MessageWriter w) => { w.WriteString("plain"); w.WriteVariantString(""); },
                (m, _) => { var r = m.GetBodyReader(); r.ReadVariantValue(); return r.ReadObjectPathAsString(); });

        /// <summary>Unlocks a collection or item, through the service's own password prompt when it needs one. A
        /// prompt needs a display; without one (headless) this fails at once rather than wait for nobody.</summary>
        public async Task UnlockAsync(string path, TimeSpan promptTimeout, CancellationToken cancellation)
        {
            var prompt = await CallAsync(ServicePath, ServiceInterface, "Unlock", "ao", (ref MessageWriter w) => w.WriteArray(new ObjectPath[] { path }),
                (m, _) => { var r = m.GetBodyReader(); r.ReadArrayOfObjectPath(); return r.ReadObjectPathAsString(); });
            if (prompt == NoObject) return;
            if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DISPLAY")) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("WAYLAND_DISPLAY")))
                throw new OmemoException("the OS keyring is locked and there is no display to ask for its password (headless): unlock it first (e.g. gnome-keyring-daemon --unlock) or set CANDOR_OMEMO_KEY=file for a new state");
            await PromptAsync(prompt, promptTimeout, cancellation);
        }

        public async Task PromptAsync(string prompt, TimeSpan timeout, CancellationToken cancellation)
        {
            var completed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var watch = await connection.WatchSignalAsync(Service, prompt, PromptInterface, "Completed",
                (m, _) => m.GetBodyReader().ReadBool(), n =>
                {
                    if (n.HasValue) completed.TrySetResult(n.Value);
                    else if (n.IsCompletion) completed.TrySetException(new OmemoException($"the OS keyring's prompt ended without an answer ({n.CompletionReason})"));
                }, ObserverFlags.None, false, null);
            await CallAsync(prompt, PromptInterface, "Prompt", "s", (ref MessageWriter w) => w.WriteString(""), (_, _) => true);
            bool dismissed;
            try
            {
                dismissed = await completed.Task.WaitAsync(timeout, cancellation);
            }
            catch (TimeoutException)
            {
                await CallAsync(prompt, PromptInterface, "Dismiss", null, null, (_, _) => true);
                throw new OmemoException($"the OS keyring's prompt was not answered within {timeout.TotalSeconds:0} s");
            }
            if (dismissed) throw new OmemoException("the OS keyring's prompt was dismissed");
        }

        public void Dispose() => connection.Dispose();
    }
}
