namespace Tripline.Recommend;

/// <summary>The labels a recommended selector names for a workload, and what the reader should know about them.</summary>
internal sealed record LabelChoice(IReadOnlyList<KeyValuePair<string, string>> Labels, string? Note)
{
    public string Text => string.Join(",", Labels.Select(l => $"{l.Key}={l.Value}"));
}

/// <summary>
/// Chooses the labels that select a workload's pods: those every pod of it carries, without the labels that change
/// from pod to pod or from rollout to rollout (<c>pod-template-hash</c> and the like), and of those the smallest set
/// that no pod of another workload in the namespace also carries. A selector on a per-pod label would break at the
/// next rollout, so such a label is used only when nothing else tells the workloads apart, and the choice says so.
/// </summary>
internal static class StableLabels
{
    /// <summary>Labels that controllers set per pod, per revision or per run.</summary>
    public static readonly IReadOnlySet<string> PerPod = new HashSet<string>(StringComparer.Ordinal)
    {
        "pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index",
        "pod-template-generation", "controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/job-completion-index", "rollouts-pod-template-hash",
    };

    /// <summary>Keys people select on, first: among sets of one size, the one with the better-known keys wins.</summary>
    private static readonly string[] Preferred =
    [
        "app.kubernetes.io/name", "app", "k8s-app", "name", "app.kubernetes.io/instance", "app.kubernetes.io/component", "component", "tier", "role",
    ];

    /// <summary>Past this many candidate labels, subsets are not all tried: labels are added best first until one set distinguishes.</summary>
    private const int MaxExhaustive = 12;

    /// <param name="workload">The label sets of the workload's pods (one per distinct set).</param>
    /// <param name="others">The label sets of the other workloads' pods in the same namespace.</param>
    /// <param name="name">The workload, to name it in a note.</param>
    public static LabelChoice Choose(IReadOnlyCollection<IReadOnlyDictionary<string, string>> workload, IReadOnlyCollection<IReadOnlyDictionary<string, string>> others, string name)
    {
        var shared = Shared(workload);
        var stable = shared.Where(l => !PerPod.Contains(l.Key)).ToList();
        if (Smallest(stable, others) is { } choice) return new LabelChoice(choice, null);
        var perPod = shared.Where(l => PerPod.Contains(l.Key)).ToList();
        if (perPod.Count > 0 && Smallest(shared, others) is { } withPerPod)
        {
            string used = string.Join(", ", withPerPod.Where(l => PerPod.Contains(l.Key)).Select(l => l.Key));
            return new LabelChoice(withPerPod, $"no stable label tells {name} from the other workloads of its namespace; the selector uses {used}, which changes with the next rollout");
        }
        var all = stable.Count > 0 ? stable : shared;
        string what = all.Count == 0 ? "its pods share no label: the selector selects every pod of the namespace" : "no label tells it from every other workload of its namespace: the selector selects theirs too";
        return new LabelChoice(Sort(all), $"{name}: {what}");
    }

    /// <summary>The labels, with their values, that every set holds.</summary>
    public static List<KeyValuePair<string, string>> Shared(IReadOnlyCollection<IReadOnlyDictionary<string, string>> sets)
    {
        if (sets.Count == 0) return [];
        var shared = new List<KeyValuePair<string, string>>();
        var first = sets.First();
        foreach (var (key, value) in first)
        {
            if (sets.All(s => s.TryGetValue(key, out var v) && v == value)) shared.Add(new(key, value));
        }
        return Sort(shared);
    }

    private static List<KeyValuePair<string, string>> Sort(IEnumerable<KeyValuePair<string, string>> labels) =>
        [.. labels.OrderBy(l => l.Key, StringComparer.Ordinal)];

    private static int Rank(string key)
    {
        int at = Array.IndexOf(Preferred, key);
        return at >= 0 ? at : Preferred.Length;
    }

    /// <summary>The smallest subset that no other set holds whole; null when even all of them do not tell it apart.</summary>
    private static List<KeyValuePair<string, string>>? Smallest(List<KeyValuePair<string, string>> candidates, IReadOnlyCollection<IReadOnlyDictionary<string, string>> others)
    {
        var ordered = candidates.OrderBy(l => Rank(l.Key)).ThenBy(l => l.Key, StringComparer.Ordinal).ToList();
        if (ordered.Count == 0) return others.Count == 0 ? [] : null;
        if (!Distinguishes(ordered, others)) return null;
        if (ordered.Count > MaxExhaustive)
        {
            var greedy = new List<KeyValuePair<string, string>>();
            foreach (var label in ordered)
            {
                greedy.Add(label);
                if (Distinguishes(greedy, others)) return Sort(greedy);
            }
            return Sort(ordered);
        }
        // Subsets by size, and within a size in the order of their members' ranks: the first that distinguishes wins.
        for (int size = 1; size <= ordered.Count; size++)
        {
            foreach (var subset in Combinations(ordered.Count, size))
            {
                var labels = subset.Select(i => ordered[i]).ToList();
                if (Distinguishes(labels, others)) return Sort(labels);
            }
        }
        return Sort(ordered);
    }

    private static bool Distinguishes(List<KeyValuePair<string, string>> labels, IReadOnlyCollection<IReadOnlyDictionary<string, string>> others) =>
        !others.Any(o => labels.All(l => o.TryGetValue(l.Key, out var v) && v == l.Value));

    /// <summary>Index combinations in lexicographic order.</summary>
    private static IEnumerable<int[]> Combinations(int n, int k)
    {
        var indices = Enumerable.Range(0, k).ToArray();
        while (true)
        {
            yield return (int[])indices.Clone();
            int i = k - 1;
            while (i >= 0 && indices[i] == n - k + i) i--;
            if (i < 0) yield break;
            indices[i]++;
            for (int j = i + 1; j < k; j++) indices[j] = indices[j - 1] + 1;
        }
    }
}
