using BenchmarkDotNet.Attributes;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;

namespace Tripline.Benchmarks;

/// <summary>Flow-table updates: packets of 50,000 concurrent flows in arrival order, events to a sink that keeps nothing.</summary>
[MemoryDiagnoser]
public class FlowTableBenchmarks
{
    private const int Flows = 50_000;
    private const int PacketsPerFlow = 20;
    private const int Packets = Flows * PacketsPerFlow;
    private PacketHeaders[] _packets = [];
    private FlowTable _table = null!;

    private sealed class CountingSink : IFlowEventSink
    {
        public long Events;
        public void OnFlowEvent(FlowEventKind kind, long timeNs, in FlowEntry flow) => Events++;
    }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        _packets = new PacketHeaders[Packets];
        long time = 1_700_000_000_000_000_000;
        for (int i = 0; i < Packets; i++)
        {
            int flow = random.Next(Flows);
            bool reply = (i & 1) == 1;
            var a = IpAddress.FromV4(0x0A000000u | (uint)flow);
            var b = IpAddress.FromV4(0x0A100000u | (uint)(flow % 500));
            ushort client = (ushort)(32768 + flow % 28000);
            ref var p = ref _packets[i];
            p.TimestampNs = time += 2_000;
            p.Source = reply ? b : a;
            p.Destination = reply ? a : b;
            p.SourcePort = reply ? (ushort)8080 : client;
            p.DestinationPort = reply ? client : (ushort)8080;
            p.Protocol = IpProtocol.Tcp;
            p.TcpFlags = TcpFlags.Ack | TcpFlags.Psh;
            p.IpLength = 120;
            p.Flags = PacketFlags.HasPorts;
        }
        _table = new FlowTable(new FlowTableOptions { MaxFlows = 65_536 }, new CountingSink());
        Run();
    }

    /// <summary>One packet at a time: every slot is a miss taken in turn.</summary>
    [Benchmark(OperationsPerInvoke = Packets, Baseline = true)]
    public int Run()
    {
        var table = _table;
        var packets = _packets;
        for (int i = 0; i < packets.Length; i++) table.Add(ref packets[i]);
        return table.Count;
    }

    /// <summary>In batches of 512, as the flow-table thread receives them: the slots of packets ahead are prefetched.</summary>
    [Benchmark(OperationsPerInvoke = Packets)]
    public int RunBatched()
    {
        var table = _table;
        var packets = _packets.AsSpan();
        for (int i = 0; i < packets.Length; i += BatchSize) table.Add(packets.Slice(i, Math.Min(BatchSize, packets.Length - i)));
        return table.Count;
    }

    private const int BatchSize = 512;
}
