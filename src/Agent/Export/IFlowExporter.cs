using Tripline.Capture.Flows;
using Tripline.Correlation.Cluster;

namespace Tripline.Export;

/// <summary>A consumer of judged flow events: the flow log, metrics, the recent-flows ring, a replay summary.</summary>
internal interface IFlowExporter
{
    /// <summary>Called on the flow-table thread, once per flow event (never per packet).</summary>
    void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context);

    /// <summary>Pushes buffered records out (interval and shutdown).</summary>
    void Flush();
}

/// <summary>What a record needs besides the flow and its judgement.</summary>
internal sealed class FlowContext(string node, Func<int, string> interfaceName, bool clusterSynced)
{
    public string Node { get; } = node;
    public Func<int, string> InterfaceName { get; } = interfaceName;
    public bool ClusterSynced { get; set; } = clusterSynced;
}
