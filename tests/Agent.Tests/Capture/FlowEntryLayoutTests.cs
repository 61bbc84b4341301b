using System.Runtime.CompilerServices;
using Tripline.Capture.Flows;
using Tripline.Capture.Parsing;

namespace Tripline.Tests.Capture;

/// <summary>
/// The flow table prefetches the first two cache lines of an entry and nothing else, so every field a packet reads or
/// writes must lie there, and the entries must start on line boundaries.
/// </summary>
public sealed unsafe class FlowEntryLayoutTests
{
    [Fact]
    public void FlowEntry_IsThreeWholeCacheLines()
    {
        Assert.Equal(FlowEntry.Size, sizeof(FlowEntry));
        Assert.Equal(0, FlowEntry.Size % 64);
    }

    [Fact]
    public void FlowEntry_FieldsAPacketUpdates_LieInTheHotLines()
    {
        var entry = default(FlowEntry);
        long lastSeenEnd = Offset(ref entry, ref entry.LastSeenNs) + sizeof(long);
        long bytesReceivedEnd = Offset(ref entry, ref entry.BytesReceived) + sizeof(ulong);
        long payloadEnd = Math.Max(Offset(ref entry, ref entry.SourcePayload), Offset(ref entry, ref entry.DestinationPayload)) + sizeof(PayloadClass);

        // The key, the interfaces, the close state and the counters: the last of them is BytesReceived.
        Assert.True(bytesReceivedEnd <= FlowEntry.HotBytes, $"BytesReceived ends at {bytesReceivedEnd}");
        Assert.True(lastSeenEnd <= FlowEntry.HotBytes, $"LastSeenNs ends at {lastSeenEnd}");
        Assert.True(payloadEnd <= FlowEntry.HotBytes, $"the payload classes end at {payloadEnd}");
        Assert.True(Offset(ref entry, ref entry.Id) >= bytesReceivedEnd, "the record-only fields follow the hot part");
    }

    private static long Offset<T>(ref FlowEntry entry, ref T field) =>
        Unsafe.ByteOffset(ref Unsafe.As<FlowEntry, byte>(ref entry), ref Unsafe.As<T, byte>(ref field));

    [Fact]
    public void PacketHeaders_FieldsTheFlowTableReads_LieInTheFirstLine()
    {
        var h = default(PacketHeaders);
        long End<T>(ref T field) where T : unmanaged =>
            Unsafe.ByteOffset(ref Unsafe.As<PacketHeaders, byte>(ref h), ref Unsafe.As<T, byte>(ref field)) + sizeof(T);

        long[] ends =
        [
            End(ref h.TimestampNs), End(ref h.Source), End(ref h.Destination), End(ref h.SourcePort), End(ref h.DestinationPort),
            End(ref h.Protocol), End(ref h.TcpFlags), End(ref h.Flags), End(ref h.IpLength), End(ref h.InterfaceIndex),
            End(ref h.FragmentId), End(ref h.IcmpType), End(ref h.IcmpCode), End(ref h.SctpChunkType), End(ref h.Payload),
        ];
        Assert.All(ends, end => Assert.True(end <= PacketHeaders.FlowBytes, $"a field the flow table reads ends at {end}"));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(8192)]
    [InlineData(65_536)]
    public void AlignedArray_StartsOnACacheLineAndHugePagesOnceLarge(int length)
    {
        var array = new AlignedArray<FlowEntry>(length);
        long address = (long)array.AddressOf(0);
        long alignment = (long)length * FlowEntry.Size >= AlignedArray<FlowEntry>.HugePageThreshold ? AlignedArray<FlowEntry>.HugePageBytes : 64;

        Assert.Equal(0, address % alignment);
        Assert.Equal(length, array.Length);
        Assert.Equal(FlowEntry.Size, (int)(array.AddressOf(1) - array.AddressOf(0)));
    }

    [Fact]
    public void AlignedArray_IsZeroedAndChecksItsBounds()
    {
        var array = new AlignedArray<FlowEntry>(1024);
        array[1023].PacketsSent = 7;

        for (int i = 0; i < 1023; i++) Assert.Equal(0UL, array[i].PacketsSent | array[i].BytesSent | (ulong)array[i].LastSeenNs);
        Assert.Equal(7UL, array[1023].PacketsSent);
        Assert.Throws<ArgumentOutOfRangeException>(() => array[1024].PacketsSent = 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => array[-1].PacketsSent = 1);
    }
}
