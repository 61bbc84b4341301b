using System.Net;
using k8s.Models;
using Tripline.Correlation.Endpoints;
using static Tripline.Tests.Correlation.Kubernetes.K8sObjects;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// Pod churn with IP reuse through the real list/watch path: 10,000 pods over 2,500 IPs, each IP handed on three
/// times. Each generation's pods are created (Pending) before the previous generation is deleted and get their IPs
/// after it, as a rolling update does, so that a new pod's creation time falls inside the old pod's lifetime.
/// </summary>
public sealed class KubernetesSourceChurnTests
{
    private const int Slots = 2_500;
    private const int Generations = 4;

    [Fact]
    public async Task Churn_TenThousandPodsWithIpReuse_IndexAttributesEachPacketToTheHolderAtItsTime()
    {
        var start = new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero);
        var clock = new ManualClock(start);
        await using var harness = await KubernetesSourceHarness.StartAsync(
            seed: store => store.Apply(Namespace("churn")),
            clock: clock,
            configure: o => o with { DeletedPodRetention = TimeSpan.FromHours(1) });
        await harness.WaitForConvergenceAsync();

        // holders[generation][slot] = uid of the pod that held the slot's IP in that generation.
        var holders = new string[Generations][];
        var generationStart = new DateTimeOffset[Generations];

        generationStart[0] = clock.GetUtcNow();
        for (int slot = 0; slot < Slots; slot++) harness.Store.Apply(Pod("churn", Name(0, slot), Ip(slot), Labels(0, slot)));
        await harness.WaitForConvergenceAsync(TimeSpan.FromSeconds(60));
        holders[0] = Uids(harness, 0);

        for (int generation = 1; generation < Generations; generation++)
        {
            var t = start.AddMinutes(generation);
            // The new pods exist, without IPs yet; a fifth of the old ones are relabelled meanwhile.
            clock.Set(t);
            for (int slot = 0; slot < Slots; slot++) harness.Store.Apply(Pod("churn", Name(generation, slot), ip: null, Labels(generation, slot)));
            for (int slot = 0; slot < Slots; slot += 5)
            {
                harness.Store.Apply(Pod("churn", Name(generation - 1, slot), Ip(slot), new Dictionary<string, string> { ["app"] = "churn", ["relabelled"] = $"{generation}" }));
            }
            await harness.WaitForConvergenceAsync(TimeSpan.FromSeconds(60));

            clock.Set(t.AddSeconds(10));
            for (int slot = 0; slot < Slots; slot++) harness.Store.Delete<V1Pod>("churn", Name(generation - 1, slot));
            await harness.WaitForConvergenceAsync(TimeSpan.FromSeconds(60));

            clock.Set(t.AddSeconds(20));
            generationStart[generation] = clock.GetUtcNow();
            for (int slot = 0; slot < Slots; slot++) harness.Store.Apply(Pod("churn", Name(generation, slot), Ip(slot), Labels(generation, slot)));
            await harness.WaitForConvergenceAsync(TimeSpan.FromSeconds(60));
            holders[generation] = Uids(harness, generation);
        }

        // The last generation loses a fifth of its pods at the end.
        var end = start.AddMinutes(Generations).AddSeconds(30);
        clock.Set(end);
        for (int slot = 0; slot < Slots; slot += 5) harness.Store.Delete<V1Pod>("churn", Name(Generations - 1, slot));
        var snapshot = await harness.WaitForConvergenceAsync(TimeSpan.FromSeconds(60));

        var index = EndpointIndex.Build(snapshot);
        int wrong = 0;
        string? firstWrong = null;
        for (int generation = 0; generation < Generations; generation++)
        {
            // Inside the generation's tenure, and (for all but the last) in the window where the next generation's
            // pods already exist but the IP is still this one's.
            var times = new List<DateTimeOffset> { generationStart[generation].AddSeconds(5) };
            if (generation + 1 < Generations) times.Add(start.AddMinutes(generation + 1).AddSeconds(5));
            foreach (var time in times)
            {
                for (int slot = 0; slot < Slots; slot++)
                {
                    var resolved = index.Resolve(IpKey.From(IPAddress.Parse(Ip(slot))), KubernetesClusterSourceTests.ToNs(time));
                    if (resolved.Pod?.Uid != holders[generation][slot])
                    {
                        wrong++;
                        firstWrong ??= $"slot {slot} at {time:O}: expected {Name(generation, slot)}, got {resolved.Pod?.Name ?? resolved.KindName}";
                    }
                }
            }
        }
        Assert.True(wrong == 0, $"{wrong} wrong attributions; first: {firstWrong}; holders of slot 0: "
            + string.Join(", ", snapshot.Pods.Where(p => p.Ips.Any(ip => ip.ToString() == Ip(0))).Select(p => $"{p.Name} {p.CreatedAt:O}..{p.DeletedAt:O}")));

        // At the end: the live pods hold their IPs, and the ones just deleted still own their late packets.
        for (int slot = 0; slot < Slots; slot++)
        {
            var now = index.Resolve(IpKey.From(IPAddress.Parse(Ip(slot))), KubernetesClusterSourceTests.ToNs(end.AddSeconds(30)));
            Assert.Equal(holders[Generations - 1][slot], now.Pod?.Uid);
            Assert.Equal(slot % 5 == 0, now.Pod?.DeletedAt is not null);
        }
        Assert.Equal(Slots - Slots / 5, snapshot.Pods.Count(p => p.DeletedAt is null));
        Assert.True(index.TryGetPod($"churn/{Name(Generations - 1, 1)}", out var live) && live!.DeletedAt is null);
        Assert.Equal(0, harness.StatusOf(ApiResource.Pods).Relists);
        Assert.True(harness.StatusOf(ApiResource.Pods).EventsApplied >= 2_500 * 4 + 2_500 * 3 * 2 + 500 * 3);
    }

    private static string Name(int generation, int slot) => $"g{generation}-{slot}";

    private static string Ip(int slot) => $"10.100.{slot / 250}.{slot % 250 + 1}";

    private static Dictionary<string, string> Labels(int generation, int slot) =>
        new() { ["app"] = "churn", ["generation"] = $"{generation}", ["shard"] = $"{slot % 8}" };

    private static string[] Uids(KubernetesSourceHarness harness, int generation)
    {
        var byName = harness.Store.Objects<V1Pod>().ToDictionary(p => p.Metadata.Name, p => p.Metadata.Uid);
        return [.. Enumerable.Range(0, Slots).Select(slot => byName[Name(generation, slot)])];
    }
}
