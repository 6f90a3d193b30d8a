using System.Collections.Frozen;
using System.Diagnostics;
using Candor.Server.Core;
using Candor.Server.Hosting;
using Candor.Server.Modules;
using Candor.Server.Modules.Roster;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging.Abstractions;

namespace Candor.Benchmarks;

/// <summary>
/// PEP fan-out (XEP-0163): N accounts, all contacts of each other, each with one available session whose caps ask
/// for avatar metadata notifications, each publishes an avatar's metadata once: N publishes, N×N notifications
/// into the sessions' outbound queues (counting sinks: no sockets measured). Storage reads are counted during the
/// publishing, to show that notifying online contacts reads nothing (the publishes themselves write).
/// <c>dotnet run -c Release --project bench/Candor.Benchmarks -- pep [N]</c>
/// </summary>
public static class PepFanOut
{
    /// <summary>Counts the reads that reach the real store.</summary>
    private sealed class CountingStorage(IStorage inner) : IStorage
    {
        public long Reads;
        public IKeyValueStore OpenKeyValue(string name) => new KeyValue(this, inner.OpenKeyValue(name));
        public IMapStore OpenMap(string name) => new Map(this, inner.OpenMap(name));
        public IArchiveStore OpenArchive(string name) => inner.OpenArchive(name);
        public Task DeleteUserAsync(string user) => inner.DeleteUserAsync(user);
        public ValueTask DisposeAsync() => inner.DisposeAsync();

        private sealed class KeyValue(CountingStorage owner, IKeyValueStore store) : IKeyValueStore
        {
            public Task<string?> GetAsync(string user) { Interlocked.Increment(ref owner.Reads); return store.GetAsync(user); }
            public Task SetAsync(string user, string? value) => store.SetAsync(user, value);
            public Task<IReadOnlyList<string>> ListUsersAsync() => store.ListUsersAsync();
            public Task<IReadOnlyList<string>> AddManyAsync(IReadOnlyList<KeyValuePair<string, string>> values) => store.AddManyAsync(values);
        }

        private sealed class Map(CountingStorage owner, IMapStore store) : IMapStore
        {
            public Task<string?> GetAsync(string user, string key) { Interlocked.Increment(ref owner.Reads); return store.GetAsync(user, key); }
            public Task SetAsync(string user, string key, string? value) => store.SetAsync(user, key, value);
            public Task<IReadOnlyDictionary<string, string>> GetAllAsync(string user) { Interlocked.Increment(ref owner.Reads); return store.GetAllAsync(user); }
        }
    }

    public static async Task RunAsync(int accounts)
    {
        var directory = Directory.CreateTempSubdirectory("candor-bench-pep-").FullName;
        try
        {
            var storage = new CountingStorage(new SqliteStorage(Path.Combine(directory, "candor.db")));
            var server = new XmppServer(new ServerOptions { DataDirectory = directory }, storage, NullLoggerFactory.Instance);
            ModuleCatalog.RegisterAll(server);
            var names = Enumerable.Range(0, accounts).Select(i => $"user{i}").ToArray();
            var setup = Stopwatch.StartNew();
            foreach (var a in names)
                foreach (var b in names)
                    if (a != b) await server.Rosters.SaveAsync(a, new RosterItem { Jid = b + "@localhost", Subscription = Subscription.Both });
            var caps = new ClientCaps("bench", new[] { "urn:xmpp:avatar:metadata+notify" }.ToFrozenSet(), "bench");
            var sessions = new List<(Session Session, CountingTransport Sink)>();
            foreach (var name in names)
            {
                var sink = new CountingTransport();
                var session = new Session(sink, Jid.Parse($"{name}@localhost/bench"), "SCRAM-SHA-256") { IsAvailable = true, Caps = caps };
                server.Sessions.TryAdd(session, limit: 1, out _);
                sessions.Add((session, sink));
            }
            Console.WriteLine($"setup: {accounts} accounts, {accounts * (accounts - 1)} roster items in {setup.Elapsed.TotalSeconds:0.0} s");

            var parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
            Element Publish(int round, int i)
            {
                var xml = $"<iq xmlns='jabber:client' type='set' id='p{round}-{i}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                          + $"<publish node='urn:xmpp:avatar:metadata'><item id='{round:x8}{i:x32}'><metadata xmlns='urn:xmpp:avatar:metadata'>"
                          + $"<info id='{round:x8}{i:x32}' type='image/png' bytes='12345' width='64' height='64'/></metadata></item></publish></pubsub></iq>";
                parser.Read(new System.Buffers.ReadOnlySequence<byte>(System.Text.Encoding.UTF8.GetBytes(xml)), out _, out var stanza);
                return stanza!;
            }

            for (var round = 0; round < 4; round++)
            {
                var before = sessions.Sum(s => s.Sink.Delivered);
                var readsBefore = Interlocked.Read(ref storage.Reads);
                var watch = Stopwatch.StartNew();
                for (var i = 0; i < sessions.Count; i++)
                    await SessionInput.HandleAsync(server, sessions[i].Session, Publish(round, i));
                watch.Stop();
                var delivered = sessions.Sum(s => s.Sink.Delivered) - before;
                var notifications = delivered - accounts; // each publisher also gets its IQ result
                var reads = Interlocked.Read(ref storage.Reads) - readsBefore;
                Console.WriteLine($"round {round}{(round == 0 ? " (cold: nodes and subscribers loaded)" : "")}: {accounts} publishes, "
                                  + $"{notifications} notifications in {watch.Elapsed.TotalMilliseconds:0} ms: "
                                  + $"{watch.Elapsed.TotalMilliseconds * 1000 / accounts:0} µs per publish, "
                                  + $"{notifications / watch.Elapsed.TotalSeconds:#,0} notifications/s, {reads} storage reads");
            }
            await storage.DisposeAsync();
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
