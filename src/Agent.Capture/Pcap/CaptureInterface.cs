using Tripline.Capture.Parsing;

namespace Tripline.Capture.Pcap;

/// <summary>An interface a capture file describes: classic pcap has one, pcapng one per interface description block.</summary>
public sealed record CaptureInterface(int Id, LinkType LinkType, int SnapLength, string? Name);

/// <summary>Where a packet came from and when, besides its bytes.</summary>
public struct PacketInfo
{
    public long TimestampNs;
    public int OriginalLength;
    public LinkType LinkType;
    public int InterfaceId;
}
