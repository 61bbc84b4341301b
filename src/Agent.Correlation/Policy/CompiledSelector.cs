using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Policy;

/// <summary>A label selector compiled once: matchLabels and matchExpressions ANDed, the empty selector matching everything.</summary>
internal sealed class CompiledSelector
{
    public static readonly CompiledSelector Everything = new([], []);

    /// <summary>Matches no labels at all: what a required selector that is missing or malformed stands for.</summary>
    public static readonly CompiledSelector Nothing = new([], [new Requirement("", SelectorOperator.Invalid, [])]);

    private readonly KeyValuePair<string, string>[] _labels;
    private readonly Requirement[] _requirements;

    private CompiledSelector(KeyValuePair<string, string>[] labels, Requirement[] requirements)
    {
        _labels = labels;
        _requirements = requirements;
    }

    /// <summary>True for <c>{}</c>: it selects every pod (or every namespace).</summary>
    public bool IsEmpty => _labels.Length == 0 && _requirements.Length == 0;

    public static CompiledSelector Compile(V1LabelSelector? selector)
    {
        if (selector is null) return Everything;
        var labels = (selector.MatchLabels ?? new Dictionary<string, string>())
            .OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .ToArray();
        var requirements = (selector.MatchExpressions ?? [])
            .Select(e => new Requirement(e.Key ?? "", ParseOperator(e.OperatorProperty), [.. (e.Values ?? []).Distinct(StringComparer.Ordinal)]))
            .ToArray();
        return labels.Length == 0 && requirements.Length == 0 ? Everything : new CompiledSelector(labels, requirements);
    }

    public bool Matches(LabelSet labels)
    {
        foreach (var (key, value) in _labels)
        {
            if (!labels.TryGetValue(key, out var actual) || !string.Equals(actual, value, StringComparison.Ordinal)) return false;
        }
        foreach (var requirement in _requirements)
        {
            if (!requirement.Matches(labels)) return false;
        }
        return true;
    }

    /// <summary>The first term that <paramref name="labels"/> fail, in selector syntax, or null when they match.</summary>
    public string? FirstMismatch(LabelSet labels)
    {
        foreach (var (key, value) in _labels)
        {
            if (!labels.TryGetValue(key, out var actual) || !string.Equals(actual, value, StringComparison.Ordinal)) return $"{key}={value}";
        }
        foreach (var requirement in _requirements)
        {
            if (!requirement.Matches(labels)) return requirement.ToString();
        }
        return null;
    }

    /// <summary>kubectl's selector syntax: <c>app=web,tier in (a,b),!legacy</c>; <c>{}</c> when empty.</summary>
    public override string ToString()
    {
        if (IsEmpty) return "{}";
        return string.Join(",", _labels.Select(kv => $"{kv.Key}={kv.Value}").Concat(_requirements.Select(r => r.ToString())));
    }

    private static SelectorOperator ParseOperator(string? op) => op switch
    {
        "In" => SelectorOperator.In,
        "NotIn" => SelectorOperator.NotIn,
        "Exists" => SelectorOperator.Exists,
        "DoesNotExist" => SelectorOperator.DoesNotExist,
        // The validator rejects anything else before it gets here; matching nothing is the safe reading.
        _ => SelectorOperator.Invalid,
    };

    private enum SelectorOperator : byte
    {
        In,
        NotIn,
        Exists,
        DoesNotExist,
        Invalid,
    }

    private sealed record Requirement(string Key, SelectorOperator Operator, string[] Values)
    {
        public bool Matches(LabelSet labels)
        {
            bool present = labels.TryGetValue(Key, out var value);
            return Operator switch
            {
                SelectorOperator.In => present && Contains(value!),
                // NotIn matches a pod without the key at all, as the apimachinery selector does.
                SelectorOperator.NotIn => !present || !Contains(value!),
                SelectorOperator.Exists => present,
                SelectorOperator.DoesNotExist => !present,
                _ => false,
            };
        }

        private bool Contains(string value)
        {
            foreach (string candidate in Values)
            {
                if (string.Equals(candidate, value, StringComparison.Ordinal)) return true;
            }
            return false;
        }

        public override string ToString() => Operator switch
        {
            SelectorOperator.In => $"{Key} in ({string.Join(",", Values)})",
            SelectorOperator.NotIn => $"{Key} notin ({string.Join(",", Values)})",
            SelectorOperator.Exists => Key,
            SelectorOperator.DoesNotExist => "!" + Key,
            _ => $"{Key} <invalid operator>",
        };
    }
}
