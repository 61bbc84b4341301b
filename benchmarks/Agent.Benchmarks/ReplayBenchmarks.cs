using BenchmarkDotNet.Attributes;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;
using Tripline.Capture.Pcap;

namespace Tripline.Benchmarks;

/// <summary>
/// The replay path on one thread, from capture-file bytes to flow-table updates: read record, parse headers,
/// update the flow. The capture is in memory so that the figure is the agent's work, not the disk's.
/// </summary>
[MemoryDiagnoser]
public class ReplayBenchmarks
{
    private const int Packets = 200_000;
    private byte[] _capture = [];
    private readonly byte[] _readBuffer = new byte[1 << 20];
    private FlowTable _table = null!;

    private sealed class NullSink : IFlowEventSink
    {
        public long Events;
        public void OnFlowEvent(FlowEventKind kind, long timeNs, in FlowEntry flow) => Events++;
    }

    [GlobalSetup]
    public void Setup()
    {
        var frames = FrameCorpus.Create(Packets, seed: 11, flows: 20_000);
        using var memory = new MemoryStream();
        using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(0xA1B2C3D4u);
            writer.Write((ushort)2);
            writer.Write((ushort)4);
            writer.Write(0);
            writer.Write(0u);
            writer.Write(128u);
            writer.Write(1u);
            uint seconds = 1_764_000_000;
            for (int i = 0; i < frames.Length; i++)
            {
                writer.Write(seconds + (uint)(i / 100_000));
                writer.Write((uint)(i % 100_000 * 10));
                writer.Write((uint)frames[i].Length);
                writer.Write((uint)frames[i].Length + 200);
                writer.Write(frames[i]);
            }
        }
        _capture = memory.ToArray();
        _table = new FlowTable(new FlowTableOptions { MaxFlows = 32_768 }, new NullSink());
        if (Replay() != Packets) throw new InvalidOperationException("replay lost packets");
    }

    [Benchmark(OperationsPerInvoke = Packets)]
    public long Replay()
    {
        var table = _table;
        using var reader = new CaptureFileReader(new MemoryStream(_capture, writable: false), "memory", buffer: _readBuffer);
        PacketHeaders headers = default;
        long packets = 0;
        while (reader.TryReadPacket(out var data, out var info))
        {
            headers.TimestampNs = info.TimestampNs;
            headers.WireLength = info.OriginalLength;
            headers.InterfaceIndex = info.InterfaceId;
            if (PacketParser.TryParse(data, info.LinkType, ref headers) == ParseStatus.Ok && table.Add(ref headers)) packets++;
        }
        table.EndAll(FlowEndReason.Eof);
        return packets;
    }
}
