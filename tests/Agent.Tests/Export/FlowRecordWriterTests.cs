using System.Buffers;
using System.Net;
using System.Text;
using System.Text.Json;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;
using Tripline.Correlation.Policy;
using Tripline.Export;
using Tripline.Hosting;

namespace Tripline.Tests.Export;

/// <summary>
/// The endpoint and verdict-side objects of a record are rendered once per cluster object and copied after that:
/// the copy must be exactly what writing them out would give, and a changed object must never show its old text.
/// </summary>
public sealed class FlowRecordWriterTests
{
    private static string Cluster(string webLabels) => $$$"""
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: web-1
          namespace: shop
          uid: 11111111-2222-3333-4444-555555555555
          labels: {{{webLabels}}}
          ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d9f, uid: r1, controller: true}]
        spec: {nodeName: node-a, containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]}
        status: {podIP: 10.1.0.2, podIPs: [{ip: 10.1.0.2}]}
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: node-a}
        status: {addresses: [{type: InternalIP, address: 192.168.0.10}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {clusterIP: 10.96.0.20, ports: [{port: 80, targetPort: 8080}], selector: {app: web}}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny, namespace: shop}
        spec: {podSelector: {}, policyTypes: [Ingress]}
        """;

    private static JsonElement Record(ClusterModel model, string source, ushort sourcePort, string destination, ushort port)
    {
        var flowEvent = new FlowEvent { Kind = FlowEventKind.Start, TimeNs = 1_750_000_000_000_000_000 };
        flowEvent.Flow.Source = IpAddress.Parse(source);
        flowEvent.Flow.Destination = IpAddress.Parse(destination);
        flowEvent.Flow.SourcePort = sourcePort;
        flowEvent.Flow.DestinationPort = port;
        flowEvent.Flow.Protocol = IpProtocol.Tcp;
        flowEvent.Flow.InterfaceCount = 1;
        var judgement = model.Judge(flowEvent.Flow.Source.ToKey(), flowEvent.Flow.Destination.ToKey(), port, PolicyProtocol.TCP, flowEvent.TimeNs);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            FlowRecordWriter.Write(writer, flowEvent, judgement, new FlowContext("node-a", _ => "eth0", clusterSynced: true));
        }
        return JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
    }

    [Fact]
    public void Write_EveryEndpointKind_ObjectsExactlyAsSpecified_TheSameOnEveryRecord()
    {
        var model = ClusterModel.Build(ManifestLoader.LoadFromText(Cluster("{app: web, note: \"a<b \\\"q\\\" é\"}")).Snapshot);
        for (int pass = 0; pass < 2; pass++)
        {
            // The second pass is served from the rendered fragments.
            var toPod = Record(model, "192.168.0.10", 40000, "10.1.0.2", 8080);
            Assert.Equal("""{"ip":"192.168.0.10","port":40000,"kind":"node","node":"node-a"}""", toPod.GetProperty("src").GetRawText());
            Assert.Equal("""{"ip":"10.1.0.2","port":8080,"kind":"pod","namespace":"shop","pod":"web-1","uid":"11111111-2222-3333-4444-555555555555","workload":"ReplicaSet/web-5d9f","labels":{"app":"web","note":"a\u003Cb \u0022q\u0022 \u00E9"},"node":"node-a"}""",
                toPod.GetProperty("dst").GetRawText());
            Assert.Equal("a<b \"q\" é", toPod.GetProperty("dst").GetProperty("labels").GetProperty("note").GetString());

            var toService = Record(model, "203.0.113.9", 50000, "10.96.0.20", 80);
            Assert.Equal("""{"ip":"203.0.113.9","port":50000,"kind":"external"}""", toService.GetProperty("src").GetRawText());
            Assert.Equal("""{"ip":"10.96.0.20","port":80,"kind":"service","namespace":"shop","service":"shop/web"}""", toService.GetProperty("dst").GetRawText());
        }
    }

    [Fact]
    public void Write_PodRelabelledInANewSnapshot_ShowsTheNewLabels()
    {
        var before = ClusterModel.Build(ManifestLoader.LoadFromText(Cluster("{app: web}")).Snapshot);
        Assert.Equal("web", Record(before, "203.0.113.9", 50000, "10.1.0.2", 8080).GetProperty("dst").GetProperty("labels").GetProperty("app").GetString());
        var after = ClusterModel.Build(ManifestLoader.LoadFromText(Cluster("{app: web-v2}")).Snapshot, previous: before);
        var labels = Record(after, "203.0.113.9", 50000, "10.1.0.2", 8080).GetProperty("dst").GetProperty("labels");
        Assert.Equal("web-v2", labels.GetProperty("app").GetString());
    }

    [Fact]
    public void WriteSide_DeniedSide_ListsTheIsolatingPolicies()
    {
        var model = ClusterModel.Build(ManifestLoader.LoadFromText(Cluster("{app: web}")).Snapshot);
        var record = Record(model, "203.0.113.9", 50000, "10.1.0.2", 8080);
        Assert.Equal("deny", record.GetProperty("verdict").GetString());
        Assert.Equal("""{"isolated":true,"allowed":false,"policies":["shop/default-deny"]}""", record.GetProperty("ingress").GetRawText());
        Assert.Equal(JsonValueKind.Null, record.GetProperty("egress").ValueKind);
    }
}
