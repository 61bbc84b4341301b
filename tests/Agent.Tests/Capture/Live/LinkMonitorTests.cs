using System.Buffers.Binary;
using System.Text;
using Tripline.Capture.Live;

namespace Tripline.Tests.Capture.Live;

public sealed class LinkMonitorTests
{
    /// <summary>An rtnetlink link message as the kernel writes it: nlmsghdr, ifinfomsg, then attributes (name among others).</summary>
    private static byte[] LinkMessage(ushort type, int index, uint flags, string? name, params (ushort Type, byte[] Value)[] extra)
    {
        var attributes = new List<byte>();
        void Add(ushort attributeType, byte[] value)
        {
            var header = new byte[4];
            BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(4 + value.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(2), attributeType);
            attributes.AddRange(header);
            attributes.AddRange(value);
            while (attributes.Count % 4 != 0) attributes.Add(0);
        }
        foreach (var (t, v) in extra) Add(t, v);
        if (name is not null) Add(3, Encoding.ASCII.GetBytes(name + "\0"));
        var message = new byte[16 + 16 + attributes.Count];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), type);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(16 + 4), index);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(16 + 8), flags);
        attributes.CopyTo(message, 32);
        return message;
    }

    [Fact]
    public void Parse_NewLinkDownThenUpThenDeleted_ReportsEachWithNameIndexAndState()
    {
        byte[] data = [.. LinkMessage(16, 12, 0x1002, "cali1234", (4, [0xdc, 0x05, 0, 0])), .. LinkMessage(16, 12, 0x1003, "cali1234"), .. LinkMessage(17, 12, 0x1003, "cali1234")];
        var events = new List<LinkEvent>();

        LinkMonitor.Parse(data, events);

        Assert.Equal(
            [new LinkEvent(false, 12, "cali1234", false), new LinkEvent(false, 12, "cali1234", true), new LinkEvent(true, 12, "cali1234", true)],
            events);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(20)]
    [InlineData(33)]
    public void Parse_MessageCutAnywhere_ReportsOnlyWholeMessagesAndNeverThrows(int cut)
    {
        byte[] first = LinkMessage(16, 5, 1, "veth9");
        byte[] second = LinkMessage(16, 6, 1, "veth10");
        byte[] data = [.. first, .. second.AsSpan(0, Math.Min(cut, second.Length))];
        var events = new List<LinkEvent>();

        LinkMonitor.Parse(data, events);

        Assert.Equal([new LinkEvent(false, 5, "veth9", true)], events);
    }

    [Fact]
    public void Parse_OtherMessagesAndLinksWithoutName_AreSkipped()
    {
        byte[] data = [.. LinkMessage(20, 3, 1, "eth0"), .. LinkMessage(16, 4, 1, null), .. LinkMessage(16, 8, 1, "lxc01")];
        var events = new List<LinkEvent>();

        LinkMonitor.Parse(data, events);

        Assert.Equal([new LinkEvent(false, 8, "lxc01", true)], events);
    }

    [Fact]
    public void TryOpen_OnThisMachine_SubscribesWithoutPrivilege()
    {
        using var monitor = LinkMonitor.TryOpen(out string? error);
        Assert.True(monitor is not null, error);
        Assert.True(monitor.FileDescriptor > 0);
        Assert.True(monitor.ReadAll([]));
    }
}
