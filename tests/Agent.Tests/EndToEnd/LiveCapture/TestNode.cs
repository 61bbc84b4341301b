using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Tripline.Tests.EndToEnd.LiveCapture;

/// <summary>
/// A node built from network namespaces: a "node" namespace holding a bridge, and one namespace per pod joined to
/// it by a veth pair whose host side is named like Calico's (<c>cali…</c>). Addresses come from 198.18.77.0/24
/// (the benchmarking range) and exist only inside these namespaces; the node has no uplink, so nothing leaves.
/// Everything is removed on dispose, even after a failure.
/// </summary>
internal sealed class TestNode : IDisposable
{
    public const string Subnet = "198.18.77";

    private readonly List<string> _namespaces = [];
    private readonly List<Process> _processes = [];
    private readonly Dictionary<string, string> _pods = new(StringComparer.Ordinal);

    public TestNode()
    {
        Id = Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant()[..6];
        Namespace = $"tle2e-node-{Id}";
        try
        {
            AddNamespace(Namespace);
            Ip($"-n {Namespace} link set lo up");
            Ip($"-n {Namespace} link add tlbr0 type bridge");
            Ip($"-n {Namespace} link set tlbr0 up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Id { get; }

    /// <summary>The node's namespace, where the agent runs and the host-side veths live.</summary>
    public string Namespace { get; }

    public string PodNamespace(string pod) => $"tle2e-{pod}-{Id}";

    /// <summary>Host-side interface name of a pod (at most 15 characters, as the kernel wants).</summary>
    public string HostInterface(string pod) => $"cali{pod}{Id}";

    public string PodIp(string pod) => _pods[pod];

    /// <summary>What is missing on this machine to run these tests; empty when nothing is.</summary>
    public static IReadOnlyList<string> MissingPrerequisites()
    {
        var missing = new List<string>();
        if (!OperatingSystem.IsLinux()) missing.Add("Linux");
        else if (Environment.UserName != "root") missing.Add("root (network namespaces and capture need it; CI runs .ci/run as root)");
        if (!OnPath("ip")) missing.Add("ip from iproute2 (apt-get install -y iproute2)");
        if (!OnPath("python3")) missing.Add("python3 (apt-get install -y python3)");
        if (!NativeLibrary.TryLoad("libpcap.so.0.8", out var pcap)) missing.Add("libpcap (apt-get install -y libpcap0.8)");
        else NativeLibrary.Free(pcap);
        return missing;
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, tool)));

    /// <summary>A pod's host number in the subnet: its address is fixed by its one-letter name, so manifests can say it.</summary>
    public static int HostNumber(string pod) => 10 + (pod[0] - 'a' + 1);

    public void AddPod(string pod)
    {
        string ns = PodNamespace(pod);
        string ip = $"{Subnet}.{HostNumber(pod)}";
        AddNamespace(ns);
        // No IPv6: router solicitations and MLD reports would add flows the assertions do not expect.
        Run("ip", $"netns exec {ns} sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
        Ip($"-n {ns} link set lo up");
        Ip($"-n {Namespace} link add {HostInterface(pod)} type veth peer name eth0 netns {ns}");
        Ip($"-n {Namespace} link set {HostInterface(pod)} master tlbr0 up");
        Ip($"-n {ns} addr add {ip}/24 dev eth0");
        Ip($"-n {ns} link set eth0 up");
        _pods[pod] = ip;
    }

    private static int _uplinks;
    private string? _uplink;

    /// <summary>
    /// A link between the test's own network namespace and the node's (a /30 of 198.19.0.0/16), so that an agent in the
    /// node reaches a server the test runs, such as the in-process API server. Returns the test side's address.
    /// </summary>
    public System.Net.IPAddress AddUplink()
    {
        int n = Interlocked.Increment(ref _uplinks) + Environment.ProcessId % 1000 * 16;
        string prefix = $"198.19.{n / 64 % 256}.{n % 64 * 4}";
        string[] parts = prefix.Split('.');
        int last = int.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture);
        string host = $"198.19.{parts[2]}.{last + 1}", node = $"198.19.{parts[2]}.{last + 2}";
        _uplink = $"tlup{Id}";
        Ip($"link add {_uplink} type veth peer name up0 netns {Namespace}");
        Ip($"addr add {host}/30 dev {_uplink}");
        Ip($"link set {_uplink} up");
        Ip($"-n {Namespace} addr add {node}/30 dev up0");
        Ip($"-n {Namespace} link set up0 up");
        return System.Net.IPAddress.Parse(host);
    }

    /// <summary>An empty network namespace for a pod that <see cref="WirePod"/> connects later, as a CNI would.</summary>
    public string AddPodNamespace(string pod)
    {
        string ns = PodNamespace(pod);
        AddNamespace(ns);
        Ip($"-n {ns} link set lo up");
        return ns;
    }

    /// <summary>
    /// What a bridge CNI does for a new pod, in its order: the veth pair, the pod's end moved into the pod's namespace
    /// as eth0, the host end on the bridge and up, the address, the pod's end up. Returns the time the veth was created.
    /// </summary>
    public DateTime WirePod(string pod, string hostInterface, int hostNumber)
    {
        string ns = PodNamespace(pod);
        string ip = $"{Subnet}.{hostNumber}";
        var created = DateTime.UtcNow;
        Ip($"-n {Namespace} link add {hostInterface} type veth peer name eth0 netns {ns}");
        Ip($"-n {Namespace} link set {hostInterface} master tlbr0 up");
        Ip($"-n {ns} addr add {ip}/24 dev eth0");
        Ip($"-n {ns} link set eth0 up");
        _pods[pod] = ip;
        return created;
    }

    /// <summary>Runs commands of <c>ip -batch</c> in the node's namespace (thousands of links in one process).</summary>
    public void IpBatch(IEnumerable<string> commands)
    {
        string file = Path.Combine(Path.GetTempPath(), $"tripline-ip-{Id}-{Guid.NewGuid():N}.batch");
        File.WriteAllLines(file, commands);
        try
        {
            Ip($"-n {Namespace} -batch {file}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Deletes a pod's veth pair (its namespace stays, so its counters can still be read).</summary>
    public void DeletePodLink(string pod) => Ip($"-n {Namespace} link del {HostInterface(pod)}");

    private void AddNamespace(string ns)
    {
        Ip($"netns add {ns}");
        _namespaces.Add(ns);
        Run("ip", $"netns exec {ns} sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
    }

    public static void Ip(string arguments) => Run("ip", arguments);

    public static string Run(string file, string arguments, string? stdin = null)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null })
            ?? throw new InvalidOperationException($"cannot start {file}");
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        string output = process.StandardOutput.ReadToEnd();
        string error = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(30_000)) throw new TimeoutException($"{file} {arguments}: still running after 30 s");
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments}: exit {process.ExitCode}: {error.Trim()}");
        return output;
    }

    /// <summary>Starts a process in a namespace; it is killed on dispose. Its output lines are collected.</summary>
    public RunningProcess Start(string ns, string file, string arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("ip", $"netns exec {ns} {file} {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        if (environment is not null) foreach (var (k, v) in environment) info.Environment[k] = v;
        var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
        _processes.Add(process);
        return new RunningProcess(process);
    }

    /// <summary>Runs a pod role of pod.py to its end and returns its output.</summary>
    public string RunInPod(string pod, string role, string arguments)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "EndToEnd", "LiveCapture", "pod.py");
        return Run("ip", $"netns exec {PodNamespace(pod)} python3 {script} {role} {arguments}");
    }

    public RunningProcess StartInPod(string pod, string role, string arguments)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "EndToEnd", "LiveCapture", "pod.py");
        return Start(PodNamespace(pod), "python3", $"-u {script} {role} {arguments}");
    }

    /// <summary>IP-level counters of a pod's namespace: segments, datagrams and octets it sent and received.</summary>
    public PodCounters Counters(string pod)
    {
        string text = Run("ip", $"netns exec {PodNamespace(pod)} cat /proc/net/snmp /proc/net/netstat");
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i + 1 < lines.Length; i += 2)
        {
            string[] names = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string[] numbers = lines[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (names.Length != numbers.Length || names[0] != numbers[0]) { i--; continue; }
            for (int k = 1; k < names.Length; k++)
            {
                if (long.TryParse(numbers[k], out long n)) values[names[0] + names[k]] = n;
            }
        }
        return new PodCounters(values["Tcp:OutSegs"], values["Udp:OutDatagrams"], values["IpExt:OutOctets"], values["Ip:OutRequests"]);
    }

    /// <summary>Waits until a pod's counters stop moving: the last ACK or reply has left.</summary>
    public PodCounters SettledCounters(string pod)
    {
        var last = Counters(pod);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            Thread.Sleep(300);
            var now = Counters(pod);
            if (now == last) return now;
            last = now;
        }
        return last;
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
        }
        if (_uplink is not null)
        {
            try
            {
                Ip($"link del {_uplink}");
            }
            catch (InvalidOperationException)
            {
                // Deleting the node's namespace below removes the pair too.
            }
        }
        // Pods first: deleting their namespaces removes their veths from the node's bridge.
        foreach (string ns in Enumerable.Reverse(_namespaces))
        {
            try
            {
                Ip($"netns del {ns}");
            }
            catch (InvalidOperationException)
            {
            }
        }
    }
}

internal readonly record struct PodCounters(long TcpOutSegs, long UdpOutDatagrams, long IpOutOctets, long IpOutPackets)
{
    public static PodCounters operator -(PodCounters a, PodCounters b) =>
        new(a.TcpOutSegs - b.TcpOutSegs, a.UdpOutDatagrams - b.UdpOutDatagrams, a.IpOutOctets - b.IpOutOctets, a.IpOutPackets - b.IpOutPackets);
}

/// <summary>A child process whose standard output and error lines are kept, with the time each arrived.</summary>
internal sealed class RunningProcess
{
    private readonly ConcurrentQueue<(DateTime At, string Line)> _lines = new();

    public RunningProcess(Process process)
    {
        Process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue((DateTime.UtcNow, e.Data)); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue((DateTime.UtcNow, e.Data)); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Process Process { get; }

    public IReadOnlyList<(DateTime At, string Line)> Lines => [.. _lines];

    public string Output => string.Join('\n', _lines.Select(l => l.Line));

    /// <summary>Waits for a line containing <paramref name="text"/>; fails with everything printed so far.</summary>
    public DateTime WaitFor(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var (at, line) in _lines)
            {
                if (line.Contains(text, StringComparison.Ordinal)) return at;
            }
            if (Process.HasExited)
            {
                // Without a timeout, WaitForExit also waits for the output readers to reach the end of both streams:
                // a line printed just before exit may not have been delivered yet (under load, well past 100 ms).
                Process.WaitForExit();
                foreach (var (at, line) in _lines)
                {
                    if (line.Contains(text, StringComparison.Ordinal)) return at;
                }
                throw new InvalidOperationException($"process exited ({Process.ExitCode}) before printing '{text}':\n{Output}");
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"no '{text}' within {timeout.TotalSeconds} s:\n{Output}");
    }

    public void Signal(int signal) => TestSignals.Kill(Process.Id, signal);
}

internal static partial class TestSignals
{
    public const int Term = 15;

    [LibraryImport("libc.so.6", EntryPoint = "kill")]
    private static partial int KillNative(int pid, int signal);

    public static void Kill(int pid, int signal)
    {
        if (KillNative(pid, signal) != 0) throw new InvalidOperationException($"kill({pid}, {signal}) failed");
    }
}
