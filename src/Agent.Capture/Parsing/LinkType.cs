namespace Tripline.Capture.Parsing;

/// <summary>The link-layer header types (LINKTYPE_* values of pcap and pcapng) the parser understands.</summary>
public enum LinkType : ushort
{
    Null = 0,
    Ethernet = 1,
    Raw = 101,
    Loop = 108,
    LinuxSll = 113,
    Ipv4 = 228,
    Ipv6 = 229,
    LinuxSll2 = 276,
}
