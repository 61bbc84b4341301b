using BenchmarkDotNet.Attributes;
using Tripline.Hosting;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Endpoints;
using Tripline.Correlation.Manifests;
using Tripline.Export;

namespace Tripline.Benchmarks;

/// <summary>Per-flow work: judging a flow event against the demo cluster and writing its flow-log record.</summary>
[MemoryDiagnoser]
public class FlowRecordBenchmarks
{
    private ClusterModel _model = null!;
    private FlowLogExporter _exporter = null!;
    private FlowContext _context = null!;
    private FlowEvent _podEvent;
    private FlowEvent _serviceEvent;

    private sealed class NullOutput : IFlowLogOutput
    {
        public void Write(ReadOnlySpan<byte> lines) { }
        public void Flush() { }
        public void Dispose() { }
    }

    [GlobalSetup]
    public void Setup()
    {
        string demo = Path.Combine(FindRepository(), "deploy", "demo");
        _model = ClusterModel.Build(ManifestLoader.Load([demo]).Snapshot);
        _exporter = new FlowLogExporter(new NullOutput());
        _context = new FlowContext("node-a", _ => "pcap", clusterSynced: true);
        _podEvent = Event("10.244.0.10", "10.244.0.31", 5432);
        _serviceEvent = Event("10.244.0.10", "10.96.12.20", 80);
    }

    private static FlowEvent Event(string source, string destination, ushort port)
    {
        var flow = new FlowEntry
        {
            Id = 0x1234,
            Source = IpAddress.Parse(source),
            Destination = IpAddress.Parse(destination),
            SourcePort = 40000,
            DestinationPort = port,
            Protocol = IpProtocol.Tcp,
            FirstSeenNs = 1_764_000_000_000_000_000,
            LastSeenNs = 1_764_000_001_000_000_000,
            PacketsSent = 10,
            PacketsReceived = 9,
            BytesSent = 1000,
            BytesReceived = 9000,
            TcpFlagsSeen = TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Fin,
            EndReason = FlowEndReason.Fin,
            InterfaceCount = 1,
        };
        return new FlowEvent { Kind = FlowEventKind.End, TimeNs = flow.LastSeenNs, Flow = flow };
    }

    private static string FindRepository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Agent.sln"))) return dir.FullName;
        }
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Agent.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("run from inside the repository");
    }

    [Benchmark]
    public bool JudgePodFlow() => _model.Judge(_podEvent.Flow.Source.ToKey(), _podEvent.Flow.Destination.ToKey(), 5432, Correlation.Policy.PolicyProtocol.TCP, _podEvent.Flow.FirstSeenNs).Verdict.Allowed;

    [Benchmark]
    public bool JudgeServiceFlow() => _model.Judge(_serviceEvent.Flow.Source.ToKey(), _serviceEvent.Flow.Destination.ToKey(), 80, Correlation.Policy.PolicyProtocol.TCP, _serviceEvent.Flow.FirstSeenNs).Verdict.Allowed;

    [Benchmark]
    public void WriteRecord()
    {
        var judgement = _model.Judge(_podEvent.Flow.Source.ToKey(), _podEvent.Flow.Destination.ToKey(), 5432, Correlation.Policy.PolicyProtocol.TCP, _podEvent.Flow.FirstSeenNs);
        _exporter.Export(in _podEvent, in judgement, _context);
    }
}
