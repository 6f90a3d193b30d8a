using System.Net;
using Candor.Server.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace Candor.Server.Cluster;

/// <summary>
/// The Orleans silo of a cluster node: membership through Orleans' ADO.NET clustering in the PostgreSQL database
/// the nodes share (its tables created here), one cluster per served domain, failure detection tuned so that a dead
/// node is declared dead within seconds, mutual TLS with the key of the cluster secret on the silo port (docs/CLUSTER.md).
/// </summary>
public static class ClusterSilo
{
    public static async Task ConfigureAsync(IHostApplicationBuilder builder, ServerOptions options)
    {
        await CreateMembershipSchemaAsync(options.Postgres!);
        var advertise = IPAddress.Parse(options.ClusterAdvertise
            ?? (IPAddress.TryParse(options.Bind, out var bound) && !bound.Equals(IPAddress.Any) && !bound.Equals(IPAddress.IPv6Any) ? options.Bind : "127.0.0.1"));
        builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning);
        var clusterId = "candor-" + options.Domain;
        var tls = new ClusterTls(options.ClusterSecret!, clusterId);
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = "candor";
            });
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = options.Postgres;
            });
            // No gateway: nothing outside the cluster calls into it.
            silo.ConfigureEndpoints(advertise, options.ClusterPort, gatewayPort: 0);
            // Both ends present the cluster certificate and accept only a peer holding the same key.
            silo.UseTls(tls.Certificate, o =>
            {
                o.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
                o.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
                o.SslProtocols = System.Security.Authentication.SslProtocols.Tls13;
                o.RemoteCertificateValidation = (certificate, _, _) => tls.IsClusterKey(certificate);
            });
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                // A probe every two seconds, suspicion after three missed (the defaults take about a minute); tolerant
                // enough of a loaded machine not to declare a slow node dead.
                o.ProbeTimeout = TimeSpan.FromSeconds(2);
                o.NumMissedProbesLimit = 3;
                // Each node probes three others (Orleans' default is ten): its probing stays constant as the cluster grows.
                o.NumProbedSilos = 3;
                o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
                o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(10);
            });
            silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
        });
    }

    /// <summary>
    /// The tables and queries Orleans' ADO.NET membership provider reads by name (OrleansQuery), written for this
    /// provider version's parameters; created once, the queries refreshed at every start.
    /// </summary>
    private static async Task CreateMembershipSchemaAsync(string connectionString)
    {
        await using var data = NpgsqlDataSource.Create(connectionString);
        await using var command = data.CreateCommand(Schema);
        await command.ExecuteNonQueryAsync();
    }

    private const string Schema = $$"""
        SELECT pg_advisory_lock(7261536);
        CREATE TABLE IF NOT EXISTS OrleansQuery (QueryKey varchar(64) PRIMARY KEY, QueryText varchar(8000) NOT NULL);
        CREATE TABLE IF NOT EXISTS OrleansMembershipVersionTable (
            DeploymentId varchar(150) PRIMARY KEY,
            Timestamp timestamptz(3) NOT NULL DEFAULT now(),
            Version integer NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS OrleansMembershipTable (
            DeploymentId varchar(150) NOT NULL REFERENCES OrleansMembershipVersionTable (DeploymentId),
            Address varchar(45) NOT NULL,
            Port integer NOT NULL,
            Generation integer NOT NULL,
            SiloName varchar(150) NOT NULL,
            HostName varchar(150) NOT NULL,
            Status integer NOT NULL,
            ProxyPort integer NULL,
            SuspectTimes varchar(8000) NULL,
            StartTime timestamptz(3) NOT NULL,
            IAmAliveTime timestamptz(3) NOT NULL,
            PRIMARY KEY (DeploymentId, Address, Port, Generation));
        INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES
        ('InsertMembershipVersionKey', '
            WITH i AS (INSERT INTO OrleansMembershipVersionTable (DeploymentId) VALUES (@DeploymentId)
                ON CONFLICT (DeploymentId) DO NOTHING RETURNING 1)
            SELECT count(*)::int FROM i'),
        -- The version row is bumped only when it still has the version the caller read (optimistic concurrency),
        -- and the member row is written only with it.
        ('InsertMembershipKey', '
            WITH v AS (UPDATE OrleansMembershipVersionTable SET Version = Version + 1, Timestamp = now()
                WHERE DeploymentId = @DeploymentId AND Version = @Version
                    AND NOT EXISTS (SELECT 1 FROM OrleansMembershipTable WHERE DeploymentId = @DeploymentId
                        AND Address = @Address AND Port = @Port AND Generation = @Generation)
                RETURNING DeploymentId),
            i AS (INSERT INTO OrleansMembershipTable (DeploymentId, Address, Port, Generation, SiloName, HostName, Status, ProxyPort, StartTime, IAmAliveTime)
                SELECT DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, @StartTime, @IAmAliveTime FROM v
                RETURNING 1)
            SELECT count(*)::int FROM i'),
        ('UpdateMembershipKey', '
            WITH m AS (SELECT 1 FROM OrleansMembershipTable WHERE DeploymentId = @DeploymentId
                    AND Address = @Address AND Port = @Port AND Generation = @Generation),
            v AS (UPDATE OrleansMembershipVersionTable SET Version = Version + 1, Timestamp = now()
                WHERE DeploymentId = @DeploymentId AND Version = @Version AND EXISTS (SELECT 1 FROM m)
                RETURNING DeploymentId),
            u AS (UPDATE OrleansMembershipTable t SET Status = @Status, SuspectTimes = @SuspectTimes, IAmAliveTime = @IAmAliveTime
                FROM v WHERE t.DeploymentId = v.DeploymentId AND t.Address = @Address AND t.Port = @Port AND t.Generation = @Generation
                RETURNING 1)
            SELECT count(*)::int FROM u'),
        ('UpdateIAmAlivetimeKey', '
            UPDATE OrleansMembershipTable SET IAmAliveTime = @IAmAliveTime
            WHERE DeploymentId = @DeploymentId AND Address = @Address AND Port = @Port AND Generation = @Generation'),
        ('MembershipReadRowKey', '
            SELECT v.DeploymentId, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status, m.ProxyPort,
                m.SuspectTimes, m.StartTime, m.IAmAliveTime, v.Version
            FROM OrleansMembershipVersionTable v LEFT JOIN OrleansMembershipTable m ON v.DeploymentId = m.DeploymentId
                AND m.Address = @Address AND m.Port = @Port AND m.Generation = @Generation
            WHERE v.DeploymentId = @DeploymentId'),
        ('MembershipReadAllKey', '
            SELECT v.DeploymentId, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status, m.ProxyPort,
                m.SuspectTimes, m.StartTime, m.IAmAliveTime, v.Version
            FROM OrleansMembershipVersionTable v LEFT JOIN OrleansMembershipTable m ON v.DeploymentId = m.DeploymentId
            WHERE v.DeploymentId = @DeploymentId'),
        ('DeleteMembershipTableEntriesKey', '
            DELETE FROM OrleansMembershipTable WHERE DeploymentId = @DeploymentId;
            DELETE FROM OrleansMembershipVersionTable WHERE DeploymentId = @DeploymentId'),
        ('GatewaysQueryKey', '
            SELECT Address, ProxyPort, Generation FROM OrleansMembershipTable
            WHERE DeploymentId = @DeploymentId AND Status = @Status AND ProxyPort > 0'),
        ('CleanupDefunctSiloEntriesKey', '
            DELETE FROM OrleansMembershipTable
            WHERE DeploymentId = @DeploymentId AND IAmAliveTime < @IAmAliveTime AND Status = 6'),
        ('CleanupDefunctSiloEntryKey', '
            DELETE FROM OrleansMembershipTable
            WHERE DeploymentId = @DeploymentId AND Status = 6 AND Address = @Address AND Port = @Port AND Generation = @Generation')
        ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;
        SELECT pg_advisory_unlock(7261536);
        """;
}
