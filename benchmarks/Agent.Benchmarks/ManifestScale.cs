using System.Diagnostics;
using System.Globalization;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Kubernetes;
using Tripline.Correlation.Manifests;
using Tripline.Tests.Correlation.Kubernetes;
using Tripline.Tests.Support;

namespace Tripline.Benchmarks;

/// <summary>
/// A large cluster from manifests against the same cluster from the API (benchmarks/manifests/measure.sh runs these):
/// <list type="bullet">
/// <item><c>manifest-gen DIR PODS POLICIES</c> writes the cluster in every form and a capture of 600 probe flows;</item>
/// <item><c>manifest-load FILE</c> loads one file, then compiles the policies, and prints the times and the peak RSS
/// (run as a child process per form, so each peak is its own);</item>
/// <item><c>api-sync PODS POLICIES</c> serves the same cluster from the in-process API server and times the agent's
/// list-and-sync through KubernetesClient, then the same compile.</item>
/// </list>
/// </summary>
public static class ManifestScale
{
    public static int Generate(string[] args)
    {
        string dir = args[0];
        var cluster = new GeneratedCluster(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        foreach (string form in new[] { "documents", "list", "json", "list.gz" })
        {
            var clock = Stopwatch.StartNew();
            string path = cluster.Write(dir, form);
            Console.WriteLine($"{path}: {new FileInfo(path).Length / 1048576.0:F1} MiB ({clock.Elapsed.TotalSeconds:F1} s to write)");
        }
        WriteProbes(Path.Combine(dir, "probes.pcap"), cluster.Pods);
        return 0;
    }

    /// <summary>600 whole TCP connections between pods drawn across the cluster, on declared and other ports.</summary>
    private static void WriteProbes(string path, int pods)
    {
        var random = new Random(600);
        using var pcap = new TestPcap(File.Create(path));
        long t = 1_764_100_000_000_000;
        for (int i = 0; i < 600; i++)
        {
            uint client = TestPcap.Ip(GeneratedCluster.PodIp(random.Next(pods))), server = TestPcap.Ip(GeneratedCluster.PodIp(random.Next(pods)));
            ushort port = (ushort)(random.Next(2) == 0 ? 8080 : 9090), sport = (ushort)(30000 + i);
            pcap.Write(t++, TestPcap.Tcp(client, sport, server, port, 0x02));
            pcap.Write(t++, TestPcap.Tcp(server, port, client, sport, 0x12));
            pcap.Write(t++, TestPcap.Tcp(client, sport, server, port, 0x11));
            pcap.Write(t++, TestPcap.Tcp(server, port, client, sport, 0x11));
            pcap.Write(t++, TestPcap.Tcp(client, sport, server, port, 0x10));
        }
    }

    public static int Load(string[] args)
    {
        var clock = Stopwatch.StartNew();
        var loaded = ManifestLoader.Load([args[0]]);
        var load = clock.Elapsed;
        if (loaded.Errors.Count > 0) throw new InvalidOperationException(string.Join("\n", loaded.Errors.Take(5)));
        clock.Restart();
        var model = ClusterModel.Build(loaded.Snapshot);
        var compile = clock.Elapsed;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Path.GetFileName(args[0])}: {loaded.Snapshot.Pods.Count:N0} pods, {model.Engine.PolicyCount:N0} policies; load {load.TotalSeconds:F2} s, compile {compile.TotalSeconds:F2} s, peak RSS {PeakRssMiB():F0} MiB"));
        return 0;
    }

    public static async Task<int> ApiSyncAsync(string[] args)
    {
        var cluster = new GeneratedCluster(int.Parse(args[0], CultureInfo.InvariantCulture), int.Parse(args[1], CultureInfo.InvariantCulture));
        await using var server = await TestApiServer.StartAsync();
        foreach (var o in cluster.NamespaceObjects()) server.Store.Apply(o);
        foreach (var o in cluster.NodeObjects()) server.Store.Apply(o);
        foreach (var o in cluster.PodObjects()) server.Store.Apply(o);
        foreach (var o in cluster.PolicyObjects()) server.Store.Apply(o);
        var clock = Stopwatch.StartNew();
        var source = new KubernetesClusterSource(new KubernetesSourceOptions { KubeconfigPath = server.WriteKubeconfig(), StatsLogInterval = TimeSpan.Zero });
        await using (source.ConfigureAwait(false))
        {
            await source.StartAsync(CancellationToken.None);
            await source.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(10));
            var sync = clock.Elapsed;
            clock.Restart();
            var model = ClusterModel.Build(source.Current);
            var compile = clock.Elapsed;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"api: {source.Current.Pods.Count:N0} pods, {model.Engine.PolicyCount:N0} policies; sync {sync.TotalSeconds:F2} s, compile {compile.TotalSeconds:F2} s"));
        }
        return 0;
    }

    /// <summary>The process's peak resident memory (VmHWM).</summary>
    public static double PeakRssMiB()
    {
        string line = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}
