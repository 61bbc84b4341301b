using System.Diagnostics;
using System.Globalization;
using k8s.Models;
using Tripline.Correlation.Kubernetes;
using Tripline.Tests.Correlation.Kubernetes;

namespace Tripline.Benchmarks;

/// <summary>
/// The live cluster source at scale, through the real client path: the in-process HTTPS API server of the tests
/// (linked source files), a kubeconfig, list pages and a watch stream. Measures the initial sync of many pods (wall
/// time, managed memory kept, bytes allocated) and the rate at which watch events are applied. A console mode rather
/// than a BenchmarkDotNet class: one sync is a multi-second, stateful operation with a server in the same process.
/// <c>dotnet run -c Release --project benchmarks/Agent.Benchmarks -- sync-scale [pods] [events]</c>
/// </summary>
public static class ClusterSyncScale
{
    public static async Task<int> RunAsync(string[] args)
    {
        int pods = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 50_000;
        int events = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 50_000;
        const int namespaces = 250;

        await using var server = await TestApiServer.StartAsync();
        for (int n = 0; n < namespaces; n++)
        {
            server.Store.Apply(new V1Namespace { Metadata = new V1ObjectMeta { Name = $"ns-{n}", Labels = new Dictionary<string, string> { ["team"] = $"team-{n % 20}" } } });
        }
        for (int i = 0; i < pods; i++) server.Store.Apply(Pod(i, generation: 0));
        string kubeconfig = server.WriteKubeconfig();
        Console.WriteLine($"server: {pods:N0} pods in {namespaces} namespaces, resourceVersion {server.Store.Revision}");

        var options = new KubernetesSourceOptions { KubeconfigPath = kubeconfig, StatsLogInterval = TimeSpan.Zero };
        long baseline = Settle();
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        var source = new KubernetesClusterSource(options);
        await using (source.ConfigureAwait(false))
        {
            await source.StartAsync(CancellationToken.None);
            await source.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(5));
            var syncTime = clock.Elapsed;
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            long kept = Settle() - baseline;
            if (source.Current.Pods.Count != pods) throw new InvalidOperationException($"synced {source.Current.Pods.Count} pods, expected {pods}");
            Console.WriteLine($"initial sync: {pods:N0} pods in {syncTime.TotalSeconds:F2} s ({pods / syncTime.TotalSeconds:N0} pods/s); "
                + $"managed memory kept {kept / 1048576.0:F1} MiB ({kept / pods:N0} B/pod, snapshot included); allocated {allocated / 1048576.0:F0} MiB");

            // Events are queued on the server while its watch streams stall, then released at once: the rate is the
            // client's (decode, convert, apply), not the test server's serialisation.
            server.StallWatches();
            long appliedBefore = source.Status.Single(s => s.Resource == "pods").EventsApplied;
            for (int i = 0; i < events; i++) server.Store.Apply(Pod(i % pods, generation: 1 + i / pods));
            clock.Restart();
            server.ResumeWatches();
            while (source.Status.Single(s => s.Resource == "pods").EventsApplied - appliedBefore < events)
            {
                if (clock.Elapsed > TimeSpan.FromMinutes(5)) throw new TimeoutException("events were not applied");
                await Task.Delay(5);
            }
            var applyTime = clock.Elapsed;
            Console.WriteLine($"watch events: {events:N0} pod relabels applied in {applyTime.TotalSeconds:F2} s ({events / applyTime.TotalSeconds:N0} events/s)");
        }
        return 0;
    }

    private static long Settle()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static V1Pod Pod(int i, int generation)
    {
        string app = $"app-{i % 2_000}";
        return new V1Pod
        {
            Metadata = new V1ObjectMeta
            {
                Name = $"{app}-7d9f8c6b5-{i:x6}",
                NamespaceProperty = $"ns-{i % 250}",
                Labels = new Dictionary<string, string> { ["app"] = app, ["pod-template-hash"] = "7d9f8c6b5", ["tier"] = (i % 3).ToString(CultureInfo.InvariantCulture), ["rev"] = generation.ToString(CultureInfo.InvariantCulture) },
                OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = $"{app}-7d9f8c6b5", Uid = $"rs-{i % 2_000}", Controller = true }],
            },
            Spec = new V1PodSpec
            {
                NodeName = $"node-{i % 100}",
                Containers = [new V1Container { Name = "main", Image = "registry.example/app:1.0", Ports = [new V1ContainerPort { ContainerPort = 8080, Name = "http", Protocol = "TCP" }] }],
            },
            Status = new V1PodStatus
            {
                Phase = "Running",
                PodIP = $"10.{64 + i / 65_536}.{i / 256 % 256}.{i % 256}",
                PodIPs = [new V1PodIP { Ip = $"10.{64 + i / 65_536}.{i / 256 % 256}.{i % 256}" }],
            },
        };
    }
}
