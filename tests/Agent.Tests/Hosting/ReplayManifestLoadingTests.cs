using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using Tripline.Capture.Flows;
using Tripline.Capture.Sources;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Manifests;
using Tripline.Export;
using Tripline.Hosting;
using Tripline.Tests.Capture;

namespace Tripline.Tests.Hosting;

/// <summary>
/// A replay reads packets while its manifests load in the background. Nothing may be decided against the cluster
/// before it is whole: neither the orientation of a connection whose start was missed (the flow table asks which
/// side declares the port) nor a verdict.
/// </summary>
public sealed class ReplayManifestLoadingTests
{
    private const string Cluster = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: shop, labels: {app: web}}
        spec:
          containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
        status: {podIP: 10.1.0.2, podIPs: [{ip: 10.1.0.2}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: client, namespace: shop, labels: {app: client}}
        spec:
          containers: [{name: client, image: client}]
        status: {podIP: 10.1.0.3, podIPs: [{ip: 10.1.0.3}]}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny-ingress, namespace: shop}
        spec: {podSelector: {}, policyTypes: [Ingress]}
        """;

    private sealed class Recorder : IFlowExporter
    {
        public List<(FlowEventKind Kind, FlowOrientation Orientation, string Source, int DestinationPort, bool Allowed, bool Synced)> Records { get; } = [];

        public void Export(in FlowEvent flowEvent, in FlowJudgement judgement, FlowContext context) =>
            Records.Add((flowEvent.Kind, flowEvent.Flow.Orientation, flowEvent.Flow.Source.ToString(), flowEvent.Flow.DestinationPort, judgement.Verdict.Allowed, context.ClusterSynced));

        public void Flush()
        {
        }
    }

    [Fact]
    public async Task RunToEnd_ManifestsLoadAfterEveryPacketWasRead_OrientationAndVerdictsComeFromTheLoadedCluster()
    {
        string pcap = Path.GetTempFileName();
        try
        {
            // The connection's start is not in the capture: the server's packet comes first, so only the pod's declared
            // port 8080 can say that 10.1.0.3 initiated it.
            var file = CaptureFileBuilder.Classic()
                .Record(1_750_000_000, 0, Frame("10.1.0.2", 8080, "10.1.0.3", 40000))
                .Record(1_750_000_000, 1000, Frame("10.1.0.3", 40000, "10.1.0.2", 8080))
                .Record(1_750_000_000, 2000, Frame("10.1.0.2", 8080, "10.1.0.3", 40000));
            File.WriteAllBytes(pcap, file.ToArray());

            var loading = new TaskCompletionSource<ManifestLoadResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            var source = new PcapFileSource([pcap]);
            using var cluster = new ClusterState(new ManifestClusterSource(loading.Task));
            var recorder = new Recorder();
            var pipeline = new FlowPipeline(source, cluster, new FlowTableOptions(), [recorder], "node-1");

            var run = Task.Run(() => pipeline.RunToEnd(CancellationToken.None));
            // Let the whole capture be read, then let the manifests arrive.
            SpinWait.SpinUntil(() => source.Counters.Frames == 3, TimeSpan.FromSeconds(10));
            await Task.Delay(200);
            Assert.False(run.IsCompleted, "the replay finished before its manifests were loaded");
            Assert.Empty(recorder.Records);
            loading.SetResult(ManifestLoader.LoadFromText(Cluster));
            await run.WaitAsync(TimeSpan.FromSeconds(10));

            Assert.NotEmpty(recorder.Records);
            Assert.All(recorder.Records, r =>
            {
                Assert.Equal(FlowOrientation.Inferred, r.Orientation);
                Assert.Equal("10.1.0.3", r.Source);
                Assert.Equal(8080, r.DestinationPort);
                Assert.False(r.Allowed);
                Assert.True(r.Synced);
            });
        }
        finally
        {
            File.Delete(pcap);
        }
    }

    [Fact]
    public async Task RunToEnd_ManifestLoadingFails_FinishesRatherThanWaitingForever()
    {
        string pcap = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(pcap, CaptureFileBuilder.Classic().Record(1_750_000_000, 0, Frame("10.1.0.3", 40000, "10.1.0.2", 8080, syn: true)).ToArray());
            var manifests = new ManifestClusterSource(Task.FromException<ManifestLoadResult>(new IOException("disk gone")));
            using var cluster = new ClusterState(manifests);
            var recorder = new Recorder();
            var pipeline = new FlowPipeline(new PcapFileSource([pcap]), cluster, new FlowTableOptions(), [recorder], "node-1");

            await Task.Run(() => pipeline.RunToEnd(CancellationToken.None)).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(manifests.Loading.IsFaulted);
            Assert.Equal(2, recorder.Records.Count); // start and end, judged against an empty cluster
        }
        finally
        {
            File.Delete(pcap);
        }
    }

    private static byte[] Frame(string source, ushort sourcePort, string destination, ushort destinationPort, bool syn = false, bool rst = false)
    {
        var tcp = new TcpPacket(sourcePort, destinationPort) { Acknowledgment = !syn && !rst, Synchronize = syn, Reset = rst, WindowSize = 1024 };
        var ip = new IPv4Packet(IPAddress.Parse(source), IPAddress.Parse(destination)) { PayloadPacket = tcp, TimeToLive = 64 };
        var ethernet = new EthernetPacket(PhysicalAddress.Parse("02-00-00-00-00-01"), PhysicalAddress.Parse("02-00-00-00-00-02"), EthernetType.IPv4) { PayloadPacket = ip };
        ethernet.UpdateCalculatedValues();
        return ethernet.Bytes;
    }

    [Fact]
    public async Task RunToEnd_ManifestsStillLoading_HoldsABoundedNumberOfEventsAndThenStopsReading()
    {
        // 40,000 flows of two packets: more events than the bound and both queues hold, so reading must stop.
        const int Flows = 40_000;
        string pcap = Path.GetTempFileName();
        try
        {
            var file = CaptureFileBuilder.Classic();
            for (int i = 0; i < Flows; i++)
            {
                string client = $"10.2.{i >> 8 & 255}.{i & 255}";
                ushort port = (ushort)(20000 + i / 65536);
                file.Record(1_750_000_000, (uint)i, Frame(client, port, "10.1.0.2", 8080, syn: true));
                file.Record(1_750_000_000, (uint)i, Frame(client, port, "10.1.0.2", 8080, syn: false, rst: true));
            }
            File.WriteAllBytes(pcap, file.ToArray());

            var loading = new TaskCompletionSource<ManifestLoadResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            var source = new PcapFileSource([pcap]);
            using var cluster = new ClusterState(new ManifestClusterSource(loading.Task));
            var recorder = new Recorder();
            var pipeline = new FlowPipeline(source, cluster, new FlowTableOptions { MaxFlows = Flows * 2 }, [recorder], "node-1") { MaxDeferredEvents = 1024 };

            var run = Task.Run(() => pipeline.RunToEnd(CancellationToken.None));
            long read = -1;
            for (int i = 0; i < 50 && read != source.Counters.Frames; i++)
            {
                read = source.Counters.Frames;
                await Task.Delay(100);
            }
            Assert.True(source.Counters.Frames < 2 * Flows, $"read all {source.Counters.Frames} packets while holding at most 1,024 events");
            Assert.Empty(recorder.Records);

            loading.SetResult(ManifestLoader.LoadFromText(Cluster));
            await run.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(2 * Flows, recorder.Records.Count);
            Assert.All(recorder.Records, r => Assert.False(r.Allowed));
        }
        finally
        {
            File.Delete(pcap);
        }
    }
}
