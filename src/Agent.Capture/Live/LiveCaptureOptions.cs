namespace Tripline.Capture.Live;

/// <summary>Where and how live capture reads packets. Read once when capture starts.</summary>
public sealed record LiveCaptureOptions
{
    /// <summary>
    /// Host-side names of pod interfaces, bridges and overlay devices of the common CNIs: Calico, Cilium, bridge and
    /// ptp plugins, AWS VPC CNI, Azure CNI, GKE, Flannel, Weave, kube-router, Antrea, OVN-Kubernetes.
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultInterfaces =
    [
        "cali*", "lxc*", "veth*", "eni*", "azv*", "gke*", "cni*", "flannel*", "vxlan*", "cilium_*", "genev*", "tunl*",
        "weave", "vethwe*", "kube-bridge", "antrea-gw*", "ovn-k8s-*",
    ];

    /// <summary>Interface name globs (<c>*</c> and <c>?</c>), matched against <c>/sys/class/net</c>.</summary>
    public IReadOnlyList<string> Interfaces { get; init; } = DefaultInterfaces;

    /// <summary>
    /// Capture on libpcap's <c>any</c> device (Linux cooked capture v2, which carries the interface index) and keep
    /// only packets of interfaces that match <see cref="Interfaces"/>: one socket instead of one per veth.
    /// </summary>
    public bool UseAnyDevice { get; init; }

    /// <summary>Bytes kept of each packet: headers only. 128 holds Ethernet + IPv4 + VXLAN + inner IPv4 + TCP.</summary>
    public int SnapLength { get; init; } = 128;

    /// <summary>Kernel ring per interface (libpcap's buffer size).</summary>
    public int KernelBufferBytes { get; init; } = 4 << 20;

    /// <summary>How long the kernel holds a partly filled block before handing it over (TPACKET_V3 block timeout).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Deliver every packet at once instead of in blocks: lower latency, much more CPU under load.</summary>
    public bool Immediate { get; init; }

    /// <summary>Put interfaces in promiscuous mode (needs CAP_NET_ADMIN; veths on a bridge already are).</summary>
    public bool Promiscuous { get; init; }

    /// <summary>Optional BPF filter (pcap-filter syntax) applied in the kernel on every interface.</summary>
    public string? BpfFilter { get; init; }

    /// <summary>
    /// How often interfaces are listed again where the kernel's link notifications cannot be had, so that new veths
    /// are captured and vanished ones released; also how long a failed open waits (five times this) before a retry.
    /// </summary>
    public TimeSpan RescanInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// With link notifications, interfaces are opened as the kernel announces them, and a full listing runs only this
    /// often, as a safety net (and at once when the kernel reports it dropped notifications).
    /// </summary>
    public TimeSpan NotifiedRescanInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// One socket per interface: also keep a small socket on the <c>any</c> device that reads new interfaces until
    /// their own handle is open, so a pod's first packets are not lost to the milliseconds an open takes.
    /// </summary>
    public bool GapCapture { get; init; } = true;

    /// <summary>How long the name and counters of an interface that went away are kept (flows still name it).</summary>
    public TimeSpan VanishedRetention { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Longest time parsed headers wait in a partly filled batch before they are handed to the flow table, and longest
    /// time a handed-over batch waits before the flow table is woken for it: a packet reaches the table within twice
    /// this.
    /// </summary>
    public TimeSpan HandoffDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// While poll rounds read at least a batch of packets each, a round begins at most this often: capture pauses for
    /// what is left of the interval since the last busy round, so that on a busy node each round reads several of the
    /// kernel's blocks, rather than waking for every block (about 1,600 small packets). When blocks come slower than
    /// this, the poll itself is the wait and nothing is added. The kernel ring holds the packets meanwhile: a 4 MiB ring
    /// holds some 20 ms of 128-byte snapshots at a million packets a second. A quiet node never pauses. Zero turns
    /// pacing off.
    /// </summary>
    public TimeSpan BusyPause { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Every problem at once, phrased with the option it comes from.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Interfaces.Count == 0) problems.Add("--interfaces: at least one glob is needed");
        foreach (string glob in Interfaces)
        {
            if (string.IsNullOrWhiteSpace(glob) || glob.Contains('/', StringComparison.Ordinal)) problems.Add($"--interfaces: '{glob}' is not an interface name glob");
        }
        if (SnapLength is < 64 or > 262_144) problems.Add($"--snaplen: must be between 64 and 262144 bytes (was {SnapLength})");
        if (KernelBufferBytes is < 65_536) problems.Add($"--kernel-buffer: must be at least 65536 bytes (was {KernelBufferBytes})");
        if (ReadTimeout <= TimeSpan.Zero || ReadTimeout > TimeSpan.FromSeconds(10)) problems.Add($"read timeout: must be between 1 ms and 10 s (was {ReadTimeout})");
        if (RescanInterval < TimeSpan.FromMilliseconds(100)) problems.Add($"rescan interval: must be at least 100 ms (was {RescanInterval})");
        if (HandoffDelay <= TimeSpan.Zero) problems.Add($"hand-off delay: must be positive (was {HandoffDelay})");
        if (BusyPause < TimeSpan.Zero || BusyPause > TimeSpan.FromMilliseconds(100)) problems.Add($"busy pause: must be between 0 and 100 ms (was {BusyPause})");
        if (BpfFilter is { Length: 0 }) problems.Add("--bpf-filter: empty");
        return problems;
    }
}
