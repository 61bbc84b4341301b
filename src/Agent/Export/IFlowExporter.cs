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
internal sealed class FlowContext(string node, Func<int, string> interfaceName, bool clusterSynced, bool capturesEachInterface = false)
{
    /// <summary>Each pod veth is captured apart: a packet between two pods of this node shows whether it reached the second.</summary>
    public bool CapturesEachInterface { get; } = capturesEachInterface;

    private readonly Dictionary<int, (string Name, System.Text.Json.JsonEncodedText Encoded)> _interfaces = [];

    public string Node { get; } = node;
    public Func<int, string> InterfaceName { get; } = interfaceName;
    public bool ClusterSynced { get; set; } = clusterSynced;

    /// <summary>The node name, JSON-encoded once rather than escaped again in every record.</summary>
    public System.Text.Json.JsonEncodedText EncodedNode { get; } = System.Text.Json.JsonEncodedText.Encode(node);

    /// <summary>
    /// An interface's name, JSON-encoded once per name: an ifindex can come back under another name (a pod's veth
    /// recreated), so the cached text is used only while the source still gives the same name.
    /// </summary>
    public System.Text.Json.JsonEncodedText EncodedInterface(int index)
    {
        string name = InterfaceName(index);
        lock (_interfaces)
        {
            if (_interfaces.TryGetValue(index, out var cached) && (ReferenceEquals(cached.Name, name) || cached.Name == name)) return cached.Encoded;
            var encoded = System.Text.Json.JsonEncodedText.Encode(name);
            _interfaces[index] = (name, encoded);
            return encoded;
        }
    }
}
