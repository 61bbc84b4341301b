using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Policy.Calico;

/// <summary>Compiles Calico's policies and tiers into the tier model (<c>Policy/Tiers</c>).</summary>
internal static partial class CalicoPolicyCompiler
{
    /// <summary>Collects what Calico's API server would refuse in <paramref name="calico"/>, by field.</summary>
    public static void Validate(CalicoObject calico, List<string> problems)
    {
        _ = calico;
        _ = problems;
    }
}
