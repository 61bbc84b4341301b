namespace Tripline.TrafficGen;

internal enum FlowKind : byte
{
    Tcp,
    Udp,
    Dns,
    Icmp,
}

internal enum CloseKind : byte
{
    /// <summary>The client closes: FIN from it, FIN from the server, the last ACK from it.</summary>
    ClientFin,
    ServerFin,
    /// <summary>After some data the client aborts with a RST.</summary>
    ClientRst,
    ServerRst,
    /// <summary>Nothing listens: SYN, then RST-ACK.</summary>
    Refused,
    /// <summary>No answer at all (a policy that drops, a network that loses): the SYN and two retransmissions, 1 s and 2 s apart.</summary>
    Unanswered,
}

/// <summary>What a TCP connection's payload looks like.</summary>
internal enum PayloadKind : byte
{
    /// <summary>By the server's port: TLS on 443, 8443 and 6443, Postgres on 5432, Redis on 6379, HTTP otherwise.</summary>
    ByPort,
    /// <summary>A TLS handshake (ClientHello, ServerHello) as each side's first data, then application data records.</summary>
    Tls,
    /// <summary>HTTP/1.1 text both ways, whatever the port.</summary>
    Plain,
}

/// <summary>One conversation to write: who talks to whom, how, how many packets, from when.</summary>
internal struct FlowSpec
{
    public int Client;
    public int Server;
    public FlowKind Kind;
    public CloseKind Close;
    public bool V6;
    public ushort ClientPort;
    public ushort ServerPort;
    public int Packets;
    /// <summary>DNS flows: the index of the name queried.</summary>
    public int DnsRecord;
    public long StartNs;
    public PayloadKind Payload;
    /// <summary>TCP: the handshake is left out of the capture, as when capture starts on a connection already open.</summary>
    public bool MissStart;
    /// <summary>TCP: every segment after the handshake carries 40 bytes of options (timestamps and three SACK blocks).</summary>
    public bool LongOptions;

    /// <summary>The fewest packets this kind of flow can have.</summary>
    public readonly int MinimumPackets => MinimumFor(Kind, Close);

    public static int MinimumFor(FlowKind kind, CloseKind close) => kind switch
    {
        FlowKind.Tcp => close switch
        {
            CloseKind.Refused => 2,
            CloseKind.Unanswered => 3,
            CloseKind.ClientRst or CloseKind.ServerRst => 5,
            _ => 7,
        },
        FlowKind.Udp => 1,
        _ => 2,
    };

    /// <summary>Whether the packet count can be anything above the minimum (DNS is 2 or 4, a refused SYN 2, pings even).</summary>
    public readonly bool IsAdjustable => Kind is FlowKind.Tcp or FlowKind.Udp && Close is not (CloseKind.Refused or CloseKind.Unanswered);

    public static int Normalize(FlowKind kind, CloseKind close, int packets)
    {
        int count = Math.Max(packets, MinimumFor(kind, close));
        if (kind == FlowKind.Tcp && close == CloseKind.Refused) return 2;
        if (kind == FlowKind.Tcp && close == CloseKind.Unanswered) return 3;
        if (kind == FlowKind.Dns) return count >= 4 ? 4 : 2;
        if (kind == FlowKind.Icmp) return count & ~1;
        return count;
    }
}
