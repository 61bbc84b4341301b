using BenchmarkDotNet.Attributes;
using PacketDotNet;
using Tripline.Capture.Parsing;

namespace Tripline.Benchmarks;

/// <summary>The header parser against PacketDotNet's Packet.ParsePacket on the same frames, extracting the same fields.</summary>
[MemoryDiagnoser]
public class ParserBenchmarks
{
    private const int Frames = 4096;
    private byte[][] _frames = [];

    [GlobalSetup]
    public void Setup()
    {
        _frames = FrameCorpus.Create(Frames, seed: 42);
        // The two variants must agree, frame by frame, before their speed means anything.
        PacketHeaders headers = default;
        foreach (byte[] frame in _frames)
        {
            var ip = Packet.ParsePacket(LinkLayers.Ethernet, frame).Extract<IPPacket>();
            if (PacketParser.TryParse(frame, LinkType.Ethernet, ref headers) != ParseStatus.Ok || ip is null
                || !headers.Source.ToIPAddress().Equals(ip.SourceAddress) || !headers.Destination.ToIPAddress().Equals(ip.DestinationAddress))
            {
                throw new InvalidOperationException("parser and PacketDotNet disagree on addresses");
            }
        }
        if (Tripline() != PacketDotNet()) throw new InvalidOperationException("parser and PacketDotNet disagree on ports, flags or ICMP types");
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Frames)]
    public long PacketDotNet()
    {
        long sum = 0;
        foreach (byte[] frame in _frames)
        {
            var packet = Packet.ParsePacket(LinkLayers.Ethernet, frame);
            var ip = packet.Extract<IPPacket>();
            if (ip is null) continue;
            sum += ip.Protocol switch
            {
                ProtocolType.Tcp when packet.Extract<TcpPacket>() is { } tcp => tcp.SourcePort + tcp.DestinationPort + (tcp.Flags & 0xFF),
                ProtocolType.Udp when packet.Extract<UdpPacket>() is { } udp => udp.SourcePort + udp.DestinationPort,
                ProtocolType.Icmp when packet.Extract<IcmpV4Packet>() is { } icmp => (int)icmp.TypeCode >> 8,
                _ => 0,
            };
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public long Tripline()
    {
        long sum = 0;
        PacketHeaders headers = default;
        foreach (byte[] frame in _frames)
        {
            if (PacketParser.TryParse(frame, LinkType.Ethernet, ref headers) != ParseStatus.Ok) continue;
            sum += headers.Protocol switch
            {
                IpProtocol.Tcp => headers.SourcePort + headers.DestinationPort + (int)headers.TcpFlags,
                IpProtocol.Udp => headers.SourcePort + headers.DestinationPort,
                IpProtocol.Icmp => headers.IcmpType,
                _ => 0,
            };
        }
        return sum;
    }
}
