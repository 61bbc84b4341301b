using System.Buffers.Binary;
using System.Net;
using PacketDotNet;

namespace Tripline.Tests.Export;

/// <summary>
/// A small cluster and a capture of it, written to a temporary directory: namespace <c>shop</c> with a default-deny
/// ingress policy that lets <c>frontend</c> reach <c>backend</c> on 8080; <c>tools/scanner</c> is denied; <c>legacy</c>
/// runs no policy (its pod is unprotected). All pods run on node-a.
/// </summary>
internal sealed class DemoTraffic : IDisposable
{
    public const string Node = "node-a";
    public static readonly DateTimeOffset Start = new(2026, 11, 26, 2, 0, 0, TimeSpan.Zero);

    public DemoTraffic()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("tripline-demo-").FullName;
        Manifests = Path.Combine(Directory, "cluster.yaml");
        Pcap = Path.Combine(Directory, "traffic.pcap");
        File.WriteAllText(Manifests, ManifestsYaml);
        WritePcap(Pcap);
    }

    public string Directory { get; }
    public string Manifests { get; }
    public string Pcap { get; }

    public const string FrontendIp = "10.244.0.10";
    public const string BackendIp = "10.244.0.20";
    public const string ScannerIp = "10.244.0.30";
    public const string LegacyIp = "10.244.0.40";

    private const string ManifestsYaml = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: tools, labels: {kubernetes.io/metadata.name: tools}}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: legacy, labels: {kubernetes.io/metadata.name: legacy}}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: frontend-7d9f-abcde
          namespace: shop
          uid: u-frontend
          labels: {app: frontend, pod-template-hash: 7d9f}
          ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: frontend-7d9f, uid: rs1, controller: true}]
        spec: {nodeName: node-a, containers: [{name: web, image: web}]}
        status: {phase: Running, podIP: 10.244.0.10}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: backend-5c6b-fghij
          namespace: shop
          uid: u-backend
          labels: {app: backend, pod-template-hash: 5c6b}
          ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: backend-5c6b, uid: rs2, controller: true}]
        spec: {nodeName: node-a, containers: [{name: api, image: api, ports: [{containerPort: 8080, protocol: TCP}]}]}
        status: {phase: Running, podIP: 10.244.0.20}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: scanner
          namespace: tools
          uid: u-scanner
          labels: {app: scanner}
        spec: {nodeName: node-a, containers: [{name: scan, image: scan}]}
        status: {phase: Running, podIP: 10.244.0.30}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: legacy-0
          namespace: legacy
          uid: u-legacy
          labels: {app: legacy}
          ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: legacy, uid: ss1, controller: true}]
        spec: {nodeName: node-a, containers: [{name: old, image: old}]}
        status: {phase: Running, podIP: 10.244.0.40}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny, namespace: shop}
        spec: {podSelector: {}, policyTypes: [Ingress]}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: backend-from-frontend, namespace: shop}
        spec:
          podSelector: {matchLabels: {app: backend}}
          policyTypes: [Ingress]
          ingress:
          - from: [{podSelector: {matchLabels: {app: frontend}}}]
            ports: [{port: 8080, protocol: TCP}]
        """;

    /// <summary>frontend→backend:8080 (allowed, 3 connections), scanner→backend:8080 (denied, 2), legacy→1.1.1.1:53/UDP (allowed).</summary>
    private static void WritePcap(string path)
    {
        var frames = new List<(DateTimeOffset Time, byte[] Frame)>();
        var t = Start;
        for (int i = 0; i < 3; i++) AddTcpConnection(frames, ref t, FrontendIp, (ushort)(40000 + i), BackendIp, 8080);
        for (int i = 0; i < 2; i++) AddTcpConnection(frames, ref t, ScannerIp, (ushort)(50000 + i), BackendIp, 8080);
        var udp = new UdpPacket(41000, 53) { PayloadData = new byte[20] };
        var ip = new IPv4Packet(IPAddress.Parse(LegacyIp), IPAddress.Parse("1.1.1.1")) { PayloadPacket = udp, TimeToLive = 64 };
        udp.UpdateCalculatedValues();
        ip.UpdateCalculatedValues();
        frames.Add((t, Ethernet(ip)));

        using var file = File.Create(path);
        Span<byte> header = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0xa1b2c3d4);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], 65535);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 1);
        file.Write(header);
        Span<byte> record = stackalloc byte[16];
        foreach (var (time, frame) in frames)
        {
            long us = (time - DateTimeOffset.UnixEpoch).Ticks / 10;
            BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)(us / 1_000_000));
            BinaryPrimitives.WriteUInt32LittleEndian(record[4..], (uint)(us % 1_000_000));
            BinaryPrimitives.WriteUInt32LittleEndian(record[8..], (uint)frame.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(record[12..], (uint)frame.Length);
            file.Write(record);
            file.Write(frame);
        }
    }

    private static void AddTcpConnection(List<(DateTimeOffset, byte[])> frames, ref DateTimeOffset t, string client, ushort clientPort, string server, ushort serverPort)
    {
        frames.Add((t, Tcp(client, clientPort, server, serverPort, syn: true, ack: false, fin: false)));
        t += TimeSpan.FromMilliseconds(1);
        frames.Add((t, Tcp(server, serverPort, client, clientPort, syn: true, ack: true, fin: false)));
        t += TimeSpan.FromMilliseconds(1);
        frames.Add((t, Tcp(client, clientPort, server, serverPort, syn: false, ack: true, fin: true)));
        t += TimeSpan.FromMilliseconds(1);
        frames.Add((t, Tcp(server, serverPort, client, clientPort, syn: false, ack: true, fin: true)));
        t += TimeSpan.FromMilliseconds(100);
    }

    private static byte[] Tcp(string src, ushort srcPort, string dst, ushort dstPort, bool syn, bool ack, bool fin)
    {
        var tcp = new TcpPacket(srcPort, dstPort) { Synchronize = syn, Acknowledgment = ack, Finished = fin, WindowSize = 65535 };
        var ip = new IPv4Packet(IPAddress.Parse(src), IPAddress.Parse(dst)) { PayloadPacket = tcp, TimeToLive = 64 };
        tcp.UpdateCalculatedValues();
        ip.UpdateCalculatedValues();
        return Ethernet(ip);
    }

    private static byte[] Ethernet(IPv4Packet ip)
    {
        var eth = new EthernetPacket(PhysicalAddress("02:00:00:00:00:01"), PhysicalAddress("02:00:00:00:00:02"), EthernetType.IPv4) { PayloadPacket = ip };
        return eth.Bytes;
    }

    private static System.Net.NetworkInformation.PhysicalAddress PhysicalAddress(string text) => System.Net.NetworkInformation.PhysicalAddress.Parse(text);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
