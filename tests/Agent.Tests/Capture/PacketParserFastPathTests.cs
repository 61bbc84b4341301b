using System.Runtime.InteropServices;
using CsCheck;
using Tripline.Capture.Parsing;
using Tripline.Capture.Pcap;

namespace Tripline.Tests.Capture;

/// <summary>
/// The parser reads the common frame (Ethernet, IPv4 without options, TCP or UDP) on a fast path of its own. Whatever
/// the frame, it must give what the general parser gives: the same status and the same headers, byte for byte.
/// </summary>
public sealed class PacketParserFastPathTests
{
    private static readonly Gen<FrameSpec> EthernetIpv4 =
        Gen.Select(Gen.Bool, Gen.Int[0, 1], Gen.UShort, Gen.UShort, Gen.Byte, Gen.Int[0, 300], Gen.Int[0, 1 << 20])
            .Select(t => new FrameSpec(Link.Ethernet, false, 0, t.Item2 == 0 ? Transport.Tcp : Transport.Udp, t.Item3, t.Item4, t.Item5, t.Item6, (ushort)(t.Item1 ? 0 : 10), 3, t.Item7));

    private static void AssertSame(ReadOnlySpan<byte> frame, LinkType link, long timestamp = 1_700_000_000_000_000_000, int wire = 0)
    {
        var fast = new PacketHeaders { TimestampNs = timestamp, WireLength = wire, InterfaceIndex = 9 };
        var general = fast;
        var fastStatus = PacketParser.TryParse(frame, link, ref fast);
        var generalStatus = PacketParser.TryParseGeneral(frame, link, ref general);

        Assert.Equal(generalStatus, fastStatus);
        if (generalStatus != ParseStatus.Ok) return;
        byte[] expected = MemoryMarshal.AsBytes(new ReadOnlySpan<PacketHeaders>(in general)).ToArray();
        byte[] actual = MemoryMarshal.AsBytes(new ReadOnlySpan<PacketHeaders>(in fast)).ToArray();
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"headers differ for frame {Convert.ToHexString(frame)}");
    }

    [Fact]
    public void TryParse_CommonFramesCutAnywhere_AgreesWithTheGeneralParser()
    {
        EthernetIpv4.Select(Gen.Int[0, int.MaxValue]).Sample((spec, at) =>
        {
            byte[] frame = spec.Build();
            AssertSame(frame, LinkType.Ethernet);
            AssertSame(frame.AsSpan(0, at % (frame.Length + 1)), LinkType.Ethernet, wire: frame.Length);
        }, iter: 5000);
    }

    [Fact]
    public void TryParse_CommonFramesWithBytesChanged_AgreesWithTheGeneralParser()
    {
        // Flips land in the headers the fast path reads (the first 60 bytes) most of the time: lengths, version,
        // fragment bits, protocol, ports (tunnel ports included), TCP data offset.
        EthernetIpv4.Select(Gen.Int[0, 59].Array[1, 4], Gen.Byte.Array[4]).Sample((spec, positions, values) =>
        {
            byte[] frame = spec.Build();
            for (int i = 0; i < positions.Length; i++) frame[positions[i] % frame.Length] = values[i];
            AssertSame(frame, LinkType.Ethernet);
        }, iter: 20_000);
    }

    [Theory]
    [InlineData(17, PacketParser.VxlanPort)]
    [InlineData(17, PacketParser.VxlanLinuxPort)]
    [InlineData(17, PacketParser.GenevePort)]
    [InlineData(6, 80)]
    [InlineData(17, 53)]
    public void TryParse_ChosenFrames_AgreesWithTheGeneralParser(byte protocol, ushort port)
    {
        var spec = new FrameSpec(Link.Ethernet, false, 0, protocol == 6 ? Transport.Tcp : Transport.Udp, 40000, port, 0x12, 64, 0, 0, 5);
        byte[] frame = spec.Build();
        AssertSame(frame, LinkType.Ethernet);
        frame[14 + 6] = 0x40; // don't fragment: still the fast path's
        AssertSame(frame, LinkType.Ethernet);
        frame[14 + 6] = 0x20; // more fragments: the general parser's
        AssertSame(frame, LinkType.Ethernet);
    }

    [Fact]
    public void TryParse_EveryEthernetFrameOfTheTcpdumpCorpus_AgreesWithTheGeneralParser()
    {
        int frames = 0;
        foreach (string file in TcpdumpCorpusTests.CorpusFiles())
        {
            try
            {
                using var reader = new CaptureFileReader(File.OpenRead(file), file);
                while (reader.TryReadPacket(out var data, out var info))
                {
                    if (info.LinkType != LinkType.Ethernet) continue;
                    AssertSame(data, LinkType.Ethernet, info.TimestampNs, info.OriginalLength);
                    frames++;
                }
            }
            catch (CaptureFileException)
            {
                // A broken file ends where it breaks; the frames before were compared.
            }
        }
        Assert.True(frames > 5_000, $"only {frames} Ethernet frames in the corpus");
    }
}
