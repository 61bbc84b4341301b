using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>One upstream e2e test as data: steps that change the cluster, each with probes of the whole matrix.</summary>
public sealed class ConformanceCase
{
    public string Name { get; set; } = "";
    public List<ConformanceStep> Steps { get; set; } = [];

    public override string ToString() => Name;

    private static readonly Lazy<IReadOnlyList<ConformanceCase>> All = new(() => Load(Path.Combine(AppContext.BaseDirectory, "Correlation", "Policy", "Fixtures", "netpol-conformance.yaml")));

    public static IReadOnlyList<ConformanceCase> Cases => All.Value;

    public static IReadOnlyList<ConformanceCase> Load(string path)
    {
        var deserializer = new DeserializerBuilder().WithNamingConvention(CamelCaseNamingConvention.Instance).Build();
        return deserializer.Deserialize<List<ConformanceCase>>(File.ReadAllText(path));
    }
}

public sealed class ConformanceStep
{
    /// <summary>Replaces every policy (an empty string deletes them all).</summary>
    public string? Policies { get; set; }

    /// <summary>Adds (or, by name, replaces) policies.</summary>
    public string? Add { get; set; }

    /// <summary>Labels added to namespaces, by short name (x, y, z).</summary>
    public Dictionary<string, Dictionary<string, string>>? NamespaceLabels { get; set; }

    /// <summary>Labels added to pods, by short name (x/a).</summary>
    public Dictionary<string, Dictionary<string, string>>? PodLabels { get; set; }

    public List<ConformanceProbe> Probes { get; set; } = [];
}

public sealed class ConformanceProbe
{
    public int Port { get; set; }
    public string Protocol { get; set; } = "TCP";

    /// <summary>[from, to, allowed] applied in order over an all-allowed matrix, as upstream's Reachability.</summary>
    public List<List<string>> Expect { get; set; } = [];
}
