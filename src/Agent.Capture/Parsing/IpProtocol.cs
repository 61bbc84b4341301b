namespace Tripline.Capture.Parsing;

/// <summary>IANA protocol numbers of the transports that make flows.</summary>
public static class IpProtocol
{
    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Icmpv6 = 58;
    public const byte Sctp = 132;

    public static string Name(byte protocol) => protocol switch
    {
        Tcp => "TCP",
        Udp => "UDP",
        Sctp => "SCTP",
        Icmp => "ICMP",
        Icmpv6 => "ICMPv6",
        _ => "IP-" + protocol.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static bool HasPorts(byte protocol) => protocol is Tcp or Udp or Sctp;
}

/// <summary>TCP header flag bits as they sit in byte 13 of the header.</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
}
