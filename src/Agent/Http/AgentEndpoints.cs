using Prometheus;
using Tripline.Export;
using Tripline.Hosting;

namespace Tripline.Http;

/// <summary>Adds the metrics exporter and the recent-flows ring to an agent, and their endpoints to its web app.</summary>
internal static class AgentEndpoints
{
    public static AgentMetrics Add(AgentParts parts, AgentOptions options)
    {
        var metrics = new AgentMetrics(options.Node, options.Metrics);
        var ring = new RecentFlows(options.RecentFlows);
        parts.Exporters.Add(metrics);
        parts.Exporters.Add(ring);
        parts.Endpoints.Add((app, host) =>
        {
            metrics.Attach(new MetricsSources(
                () => host.Pipeline.Table.Stats,
                host.Parts.PacketSource,
                host.Parts.ClusterSource,
                () => host.Cluster.Current,
                [.. host.Parts.Exporters.Select(e => e is AggregatingFlowLog a ? a.Inner : e).OfType<FlowLogExporter>()],
                () => host.Pipeline.AttributionStats));
            app.MapMetrics("/metrics", metrics.Registry);
            FlowsApi.Map(app, ring);
        });
        return metrics;
    }
}
