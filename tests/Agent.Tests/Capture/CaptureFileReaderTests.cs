using Tripline.Capture.Parsing;
using Tripline.Capture.Pcap;

namespace Tripline.Tests.Capture;

public sealed class CaptureFileReaderTests
{
    private static byte[] Frame(int length, byte seed)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++) data[i] = (byte)(seed + i);
        return data;
    }

    private sealed record ReadPacket(byte[] Data, PacketInfo Info);

    private static List<ReadPacket> ReadAll(CaptureFileReader reader)
    {
        var packets = new List<ReadPacket>();
        while (reader.TryReadPacket(out var data, out var info)) packets.Add(new ReadPacket(data.ToArray(), info));
        return packets;
    }

    private static List<ReadPacket> ReadAll(byte[] file, int chunk = int.MaxValue, string name = "test.pcap")
    {
        Stream stream = chunk == int.MaxValue ? new MemoryStream(file) : new TrickleStream(file, chunk);
        using var reader = new CaptureFileReader(stream, name, bufferSize: 64 * 1024);
        return ReadAll(reader);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void TryReadPacket_ClassicPcapInEitherByteOrderAndResolution_ReturnsPacketsWithTimes(bool bigEndian, bool nanoseconds)
    {
        var file = CaptureFileBuilder.Classic(bigEndian, nanoseconds, linkType: 113)
            .Record(1_700_000_000, 123_456, Frame(60, 1))
            .Record(1_700_000_001, nanoseconds ? 999_999_999u : 999_999u, Frame(1, 2), originalLength: 1514)
            .Record(1_700_000_002, 0, Frame(0, 3))
            .ToArray();

        var packets = ReadAll(file);

        Assert.Equal(3, packets.Count);
        long unit = nanoseconds ? 1 : 1000;
        Assert.Equal(1_700_000_000L * 1_000_000_000 + 123_456 * unit, packets[0].Info.TimestampNs);
        Assert.Equal(1_700_000_001L * 1_000_000_000 + (nanoseconds ? 999_999_999L : 999_999_000L), packets[1].Info.TimestampNs);
        Assert.Equal(Frame(60, 1), packets[0].Data);
        Assert.Equal(1514, packets[1].Info.OriginalLength);
        Assert.Empty(packets[2].Data);
        Assert.All(packets, p => Assert.Equal(LinkType.LinuxSll, p.Info.LinkType));
    }

    [Fact]
    public void TryReadPacket_ClassicLinkTypeWithFcsBits_KeepsOnlyTheType()
    {
        var file = CaptureFileBuilder.Classic(linkType: 1).Record(1, 0, Frame(20, 0)).ToArray();
        file[22] = 0x00;
        file[23] = 0x14; // FCS length bits in the upper half of the link-type field

        var packets = ReadAll(file);

        Assert.Equal(LinkType.Ethernet, Assert.Single(packets).Info.LinkType);
    }

    private static CaptureFileBuilder MixedPcapng(bool bigEndian)
    {
        // Three interfaces: Ethernet in microseconds (the default), raw IP in nanoseconds, SLL in 2^-20 s.
        return CaptureFileBuilder.Pcapng(bigEndian)
            .Other(4, 16)                                                         // name resolution block
            .Interface(1, 65535, name: "eth0")
            .Interface(101, 65535, tsresol: 9, name: "cali12ab")
            .Other(0x0BAD_F00D, 8)                                                // unknown
            .Interface(113, 128, tsresol: 0x80 | 20)
            .Enhanced(0, 1_700_000_000_123_456UL, Frame(42, 1), originalLength: 1500)
            .Enhanced(1, 1_700_000_000_123_456_789UL, Frame(41, 2))
            .Other(5, 20)                                                         // interface statistics
            .Enhanced(2, (1_700_000_000UL << 20) | (1UL << 19), Frame(43, 3))
            .Simple(Frame(44, 4))
            .Obsolete(1, 5_000_000_000UL, Frame(45, 5))
            .Other(0x0000_0BAD | 0x8000_0000, 0);                                 // a custom block, empty
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryReadPacket_PcapngWithSeveralInterfaces_ConvertsEachInterfaceResolution(bool bigEndian)
    {
        var packets = ReadAll(MixedPcapng(bigEndian).ToArray(), name: "mixed.pcapng");

        Assert.Equal(5, packets.Count);
        Assert.Equal(1_700_000_000_123_456_000L, packets[0].Info.TimestampNs);
        Assert.Equal(LinkType.Ethernet, packets[0].Info.LinkType);
        Assert.Equal(1500, packets[0].Info.OriginalLength);
        Assert.Equal(1_700_000_000_123_456_789L, packets[1].Info.TimestampNs);
        Assert.Equal(LinkType.Raw, packets[1].Info.LinkType);
        Assert.Equal(1, packets[1].Info.InterfaceId);
        Assert.Equal(1_700_000_000_500_000_000L, packets[2].Info.TimestampNs);
        Assert.Equal(LinkType.LinuxSll, packets[2].Info.LinkType);
        Assert.Equal(2, packets[2].Info.InterfaceId);
        Assert.Equal(LinkType.Ethernet, packets[3].Info.LinkType); // simple packets belong to the first interface
        Assert.Equal(Frame(44, 4), packets[3].Data);
        Assert.Equal(5_000_000_000L, packets[4].Info.TimestampNs);
        Assert.Equal(LinkType.Raw, packets[4].Info.LinkType);
        for (int i = 0; i < 5; i++) Assert.Equal(41 + (i == 0 ? 1 : i == 1 ? 0 : i), packets[i].Data.Length);
    }

    [Fact]
    public void Interfaces_PcapngInterfaceDescriptions_AreReported()
    {
        using var reader = new CaptureFileReader(new MemoryStream(MixedPcapng(false).ToArray()), "mixed.pcapng");
        ReadAll(reader);

        Assert.Equal(3, reader.Interfaces.Count);
        Assert.Equal("cali12ab", reader.Interfaces[1].Name);
        Assert.Equal(128, reader.Interfaces[2].SnapLength);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(4096)]
    public void TryReadPacket_NonSeekableStreamInSmallChunks_ReadsWhatAFileReads(int chunk)
    {
        byte[] classic = CaptureFileBuilder.Classic().Record(1, 1, Frame(100, 1)).Record(2, 2, Frame(3000, 2)).Record(3, 3, Frame(7, 3)).ToArray();
        byte[] pcapng = MixedPcapng(false).ToArray();
        foreach (byte[] file in new[] { classic, pcapng })
        {
            var expected = ReadAll(file);
            var actual = ReadAll(file, chunk);
            Assert.Equal(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.Equal(expected[i].Data, actual[i].Data);
                Assert.Equal(expected[i].Info, actual[i].Info);
            }
        }
    }

    [Fact]
    public void TryReadPacket_RecordLargerThanTheBuffer_GrowsAndReads()
    {
        byte[] big = Frame(200_000, 9);
        var packets = ReadAll(CaptureFileBuilder.Classic().Record(1, 0, big).Record(2, 0, Frame(10, 1)).ToArray(), chunk: 1000);

        Assert.Equal(big, packets[0].Data);
        Assert.Equal(2, packets.Count);
    }

    public static TheoryData<string> Formats => new() { "pcap", "pcapng" };

    [Theory]
    [MemberData(nameof(Formats))]
    public void TryReadPacket_FileCutAtEveryByte_ReturnsEarlierPacketsThenNamesFileAndOffset(string format)
    {
        var builder = format == "pcap"
            ? CaptureFileBuilder.Classic().Record(1, 0, Frame(30, 1)).Record(2, 0, Frame(31, 2)).Record(3, 0, Frame(32, 3))
            : CaptureFileBuilder.Pcapng().Interface(1).Enhanced(0, 1, Frame(30, 1)).Enhanced(0, 2, Frame(31, 2)).Enhanced(0, 3, Frame(32, 3));
        byte[] full = builder.ToArray();
        var starts = builder.RecordStarts.Append(full.Length).ToList();
        long headerEnd = starts[0];

        for (int cut = (int)headerEnd; cut < full.Length; cut++)
        {
            using var reader = new CaptureFileReader(new TrickleStream(full[..cut], 5), "cut." + format);
            var packets = new List<byte[]>();
            CaptureFileException? error = null;
            try
            {
                while (reader.TryReadPacket(out var data, out _)) packets.Add(data.ToArray());
            }
            catch (CaptureFileException e)
            {
                error = e;
            }
            int complete = starts.Count(s => s <= cut) - 1;
            Assert.Equal(complete, packets.Count);
            if (starts.Contains(cut))
            {
                Assert.Null(error); // a cut between records is a clean end
            }
            else
            {
                Assert.NotNull(error);
                Assert.Equal("cut." + format, error.FileName);
                Assert.Equal(starts[complete], error.Offset);
                Assert.Contains("cut." + format, error.Message, StringComparison.Ordinal);
                Assert.Contains(starts[complete].ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Constructor_FileCutInsideTheHeader_ThrowsNamingTheFile()
    {
        byte[] full = CaptureFileBuilder.Classic().ToArray();
        for (int cut = 0; cut < full.Length; cut++)
        {
            var e = Assert.Throws<CaptureFileException>(() => new CaptureFileReader(new MemoryStream(full[..cut]), "head.pcap"));
            Assert.Equal("head.pcap", e.FileName);
        }
        byte[] ng = CaptureFileBuilder.Pcapng().ToArray();
        for (int cut = 4; cut < ng.Length; cut++)
        {
            var e = Assert.Throws<CaptureFileException>(() => new CaptureFileReader(new MemoryStream(ng[..cut]), "head.pcapng"));
            Assert.Equal(0, e.Offset);
        }
    }

    [Fact]
    public void Constructor_UnknownMagic_ThrowsAtOffsetZero()
    {
        var e = Assert.Throws<CaptureFileException>(() => new CaptureFileReader(new MemoryStream("GET / HTTP/1.1\r\n\r\n padding padding"u8.ToArray()), "http.txt"));

        Assert.Equal(0, e.Offset);
        Assert.Contains("http.txt", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryReadPacket_ClassicRecordClaimingHugeLength_ThrowsAtThatRecord()
    {
        var builder = CaptureFileBuilder.Classic().Record(1, 0, Frame(20, 1));
        long bad = builder.Length;
        byte[] file = builder.Record(2, 0, Frame(20, 2)).ToArray();
        BitConverter.TryWriteBytes(file.AsSpan((int)bad + 8), 0x7FFF_0000u);

        using var reader = new CaptureFileReader(new MemoryStream(file), "huge.pcap");
        Assert.True(reader.TryReadPacket(out _, out _));
        var e = Assert.Throws<CaptureFileException>(() => reader.TryReadPacket(out _, out _));
        Assert.Equal(bad, e.Offset);
    }

    [Theory]
    [InlineData("unaligned")]
    [InlineData("mismatched")]
    [InlineData("undeclared")]
    [InlineData("overlong")]
    public void TryReadPacket_CorruptPcapngBlock_ThrowsAtThatBlockAfterEarlierPackets(string corruption)
    {
        var builder = CaptureFileBuilder.Pcapng().Interface(1).Enhanced(0, 1, Frame(30, 1));
        long bad = builder.Length;
        builder.Enhanced(corruption == "undeclared" ? 7 : 0, 2, Frame(30, 2));
        byte[] file = builder.ToArray();
        switch (corruption)
        {
            case "unaligned": BitConverter.TryWriteBytes(file.AsSpan((int)bad + 4), 62u); break;
            case "mismatched": BitConverter.TryWriteBytes(file.AsSpan(file.Length - 4), 68u); break;
            case "overlong": BitConverter.TryWriteBytes(file.AsSpan((int)bad + 8 + 12), 500u); break;
        }

        using var reader = new CaptureFileReader(new MemoryStream(file), "corrupt.pcapng");
        Assert.True(reader.TryReadPacket(out var first, out _));
        Assert.Equal(Frame(30, 1), first.ToArray());
        var e = Assert.Throws<CaptureFileException>(() => reader.TryReadPacket(out _, out _));
        Assert.Equal(bad, e.Offset);
        Assert.Equal("corrupt.pcapng", e.FileName);
    }

    [Fact]
    public void TryReadPacket_SecondSection_StartsANewSetOfInterfaces()
    {
        var builder = CaptureFileBuilder.Pcapng().Interface(1).Enhanced(0, 1, Frame(20, 1));
        var second = CaptureFileBuilder.Pcapng(bigEndian: true).Interface(101).Enhanced(0, 2, Frame(21, 2));
        byte[] file = [.. builder.ToArray(), .. second.ToArray()];

        var packets = ReadAll(file);

        Assert.Equal(2, packets.Count);
        Assert.Equal(LinkType.Ethernet, packets[0].Info.LinkType);
        Assert.Equal(LinkType.Raw, packets[1].Info.LinkType);
        Assert.Equal(2_000L, packets[1].Info.TimestampNs);
    }
}
