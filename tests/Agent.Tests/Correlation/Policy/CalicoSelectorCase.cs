using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>
/// One row of Fixtures/calico/selector-cases.yaml: a selector with a label set and whether it matches, or a selector
/// Calico rejects. Each case is one line of the file, so a row is named by its line.
/// </summary>
public sealed class CalicoSelectorCase
{
    public string Selector { get; set; } = "";
    public Dictionary<string, string>? Labels { get; set; }
    public bool? Match { get; set; }
    public bool Error { get; set; }

    private static readonly Lazy<IReadOnlyDictionary<int, CalicoSelectorCase>> All = new(Load);

    /// <summary>Every case, by its 1-based line number.</summary>
    public static IReadOnlyDictionary<int, CalicoSelectorCase> ByLine => All.Value;

    private static IReadOnlyDictionary<int, CalicoSelectorCase> Load()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Correlation", "Policy", "Fixtures", "calico", "selector-cases.yaml");
        // Unknown keys fail the load: a field the harness does not know would otherwise be silently dropped.
        var deserializer = new DeserializerBuilder().WithNamingConvention(CamelCaseNamingConvention.Instance).Build();
        var cases = new Dictionary<int, CalicoSelectorCase>();
        string[] lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("- ", StringComparison.Ordinal)) continue;
            var entry = deserializer.Deserialize<CalicoSelectorCase>(lines[i][2..]);
            if (entry.Error == (entry.Match is not null)) throw new InvalidDataException($"line {i + 1}: a case has either match (with labels) or error: true");
            cases.Add(i + 1, entry);
        }
        return cases;
    }
}
