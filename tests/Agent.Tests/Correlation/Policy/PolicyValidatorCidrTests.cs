using Tripline.Correlation.Manifests;

namespace Tripline.Tests.Correlation.Policy;

/// <summary>ipBlock CIDRs are read as the API server reads them: what validates is exactly what the engine judges.</summary>
public sealed class PolicyValidatorCidrTests
{
    private static string Policy(string cidr, string? except = null) => $$"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: p, namespace: ns }
        spec:
          podSelector: {}
          ingress:
          - from:
            - ipBlock: { cidr: "{{cidr}}"{{(except is null ? "" : $", except: [\"{except}\"]")}} }
        """;

    [Theory]
    [InlineData("10.0.0/8")]
    [InlineData("10/8")]
    [InlineData("0x0a.0.0.0/8")]
    [InlineData("10.0.0.0/33")]
    [InlineData("10.0.0.0/+8")]
    [InlineData("fe80::1%eth0/64")]
    [InlineData("10.0.0.0")]
    public void Load_MalformedCidr_ReportsThePolicyAndLoadsNothing(string cidr)
    {
        var result = ManifestLoader.LoadFromText(Policy(cidr), "p.yaml");
        var error = Assert.Single(result.Errors);
        Assert.Contains("NetworkPolicy ns/p", error.ToString());
        Assert.Contains("is not a CIDR", error.Message);
        Assert.Empty(result.Snapshot.Policies);
    }

    [Theory]
    [InlineData("10.0.0.0/8")]
    [InlineData("10.1.2.3/8")]
    [InlineData("0.0.0.0/0")]
    [InlineData("fd00::/64")]
    [InlineData("fd00::1/64")]
    public void Load_CidrTheApiServerAccepts_Loads(string cidr)
    {
        var result = ManifestLoader.LoadFromText(Policy(cidr), "p.yaml");
        Assert.Empty(result.Errors);
        Assert.Single(result.Snapshot.Policies);
    }

    [Theory]
    [InlineData("10.0.0.0/8", "11.0.0.0/24", false)]
    [InlineData("10.0.0.0/8", "10.0.0.0/7", false)]
    [InlineData("10.0.0.0/8", "10.1.0.0/16", true)]
    [InlineData("fd00::/16", "fd00:1::/32", true)]
    public void Load_ExceptOutsideTheCidr_IsReported(string cidr, string except, bool valid)
    {
        var result = ManifestLoader.LoadFromText(Policy(cidr, except), "p.yaml");
        Assert.Equal(valid, result.Errors.Count == 0);
        if (!valid) Assert.Contains("is not inside", Assert.Single(result.Errors).Message);
    }
}
