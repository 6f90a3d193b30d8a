using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Candor.Server.Hosting;

/// <summary>
/// /metrics on the HTTP listener: the server's instruments (<see cref="ServerMetrics"/>) and the runtime's
/// (GC, memory, thread pool: the built-in "System.Runtime" meter) in the Prometheus text format, through the
/// OpenTelemetry exporter. Answered only to loopback and to the addresses of <see cref="ServerOptions.MetricsAllow"/>;
/// anyone else, and the HTTPS listener, gets 403 with the reason.
/// </summary>
public static class MetricsEndpoint
{
    public const string Path = "/metrics";

    public static void AddServices(IServiceCollection services, ServerOptions options)
    {
        if (!options.Metrics) return;
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("candor", serviceVersion: typeof(MetricsEndpoint).Assembly.GetName().Version?.ToString(3)))
            .WithMetrics(metrics => metrics
            .AddMeter(ServerMetrics.MeterName, "System.Runtime")
            // Several servers in one process (tests) each have a meter of that name: only this one's is exported.
            .AddView(instrument => instrument.Meter.Name == ServerMetrics.MeterName && !ReferenceEquals(instrument.Meter.Scope, options)
                ? MetricStreamConfiguration.Drop : null)
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
    }

    public static void Map(WebApplication app, ServerOptions options)
    {
        if (!options.Metrics) return;
        var allowed = options.ParseMetricsAllow();
        app.Use(async (context, next) =>
        {
            if (context.Request.Path != Path || IsAllowed(context, allowed))
            {
                await next(context);
                return;
            }
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync(context.Request.IsHttps
                ? "/metrics is served on the HTTP listener only\n"
                : "/metrics is served to loopback and to the addresses in MetricsAllow only\n");
        });
        app.UseOpenTelemetryPrometheusScrapingEndpoint(Path);
    }

    private static bool IsAllowed(HttpContext context, IReadOnlyList<IPNetwork> allowed) =>
        !context.Request.IsHttps && context.Connection.RemoteIpAddress is { } address && IsAllowed(address, allowed);

    public static bool IsAllowed(IPAddress address, IReadOnlyList<IPNetwork> allowed)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (IPAddress.IsLoopback(address)) return true;
        foreach (var network in allowed)
            if (network.Contains(address)) return true;
        return false;
    }
}
