using k8s.Models;

namespace Tripline.Correlation.Policy;

/// <summary>Checks a NetworkPolicy as the API server's validation would, collecting every problem, not the first.</summary>
public static class PolicyValidator
{
    private static readonly HashSet<string> Protocols = new(StringComparer.Ordinal) { "TCP", "UDP", "SCTP" };
    private static readonly HashSet<string> PolicyTypes = new(StringComparer.Ordinal) { "Ingress", "Egress" };
    private static readonly HashSet<string> Operators = new(StringComparer.Ordinal) { "In", "NotIn", "Exists", "DoesNotExist" };

    public static IReadOnlyList<string> Validate(V1NetworkPolicy policy)
    {
        var problems = new List<string>();
        var spec = policy.Spec;
        if (spec is null)
        {
            problems.Add("spec is missing");
            return problems;
        }
        CheckSelector(spec.PodSelector, "spec.podSelector", problems);
        foreach (var (type, i) in (spec.PolicyTypes ?? []).Select((t, i) => (t, i)))
        {
            if (!PolicyTypes.Contains(type)) problems.Add($"spec.policyTypes[{i}]: '{type}' is not Ingress or Egress");
        }
        for (int r = 0; r < (spec.Ingress?.Count ?? 0); r++)
        {
            var rule = spec.Ingress![r];
            CheckPeers(rule.FromProperty, $"spec.ingress[{r}].from", problems);
            CheckPorts(rule.Ports, $"spec.ingress[{r}].ports", problems);
        }
        for (int r = 0; r < (spec.Egress?.Count ?? 0); r++)
        {
            var rule = spec.Egress![r];
            CheckPeers(rule.To, $"spec.egress[{r}].to", problems);
            CheckPorts(rule.Ports, $"spec.egress[{r}].ports", problems);
        }
        return problems;
    }

    private static void CheckPeers(IList<V1NetworkPolicyPeer>? peers, string path, List<string> problems)
    {
        for (int i = 0; i < (peers?.Count ?? 0); i++)
        {
            var peer = peers![i];
            string at = $"{path}[{i}]";
            // The API server refuses `- {}` as a peer; read as anything it would be a silent allow-all or deny-all.
            if (peer.IpBlock is null && peer.PodSelector is null && peer.NamespaceSelector is null)
            {
                problems.Add($"{at}: must specify a peer (podSelector, namespaceSelector or ipBlock)");
            }
            if (peer.IpBlock is not null)
            {
                if (peer.PodSelector is not null || peer.NamespaceSelector is not null)
                {
                    problems.Add($"{at}: ipBlock may not be combined with podSelector or namespaceSelector");
                }
                // The same parser as the engine's, so that what validates is exactly what is judged.
                if (!IpRange.TryParse(peer.IpBlock.Cidr, out var cidr))
                {
                    problems.Add($"{at}.ipBlock.cidr: '{peer.IpBlock.Cidr}' is not a CIDR");
                    continue;
                }
                foreach (var (except, j) in (peer.IpBlock.Except ?? []).Select((e, j) => (e, j)))
                {
                    if (!IpRange.TryParse(except, out var inner)) problems.Add($"{at}.ipBlock.except[{j}]: '{except}' is not a CIDR");
                    else if (!cidr.Covers(inner)) problems.Add($"{at}.ipBlock.except[{j}]: '{except}' is not inside {peer.IpBlock.Cidr}");
                }
            }
            CheckSelector(peer.PodSelector, $"{at}.podSelector", problems);
            CheckSelector(peer.NamespaceSelector, $"{at}.namespaceSelector", problems);
        }
    }

    private static void CheckPorts(IList<V1NetworkPolicyPort>? ports, string path, List<string> problems)
    {
        for (int i = 0; i < (ports?.Count ?? 0); i++)
        {
            var port = ports![i];
            string at = $"{path}[{i}]";
            if (port.Protocol is { } protocol && !Protocols.Contains(protocol)) problems.Add($"{at}.protocol: '{protocol}' is not TCP, UDP or SCTP");
            string? value = port.Port?.Value;
            if (value is not null)
            {
                if (int.TryParse(value, out int number))
                {
                    if (number is < 1 or > 65535) problems.Add($"{at}.port: {number} is outside 1-65535");
                    if (port.EndPort is { } end && (end < number || end > 65535)) problems.Add($"{at}.endPort: {end} must be between port ({number}) and 65535");
                }
                else
                {
                    if (value.Length is 0 or > 15) problems.Add($"{at}.port: '{value}' is not a valid port name");
                    if (port.EndPort is not null) problems.Add($"{at}.endPort: may not be used with a named port");
                }
            }
            else if (port.EndPort is not null)
            {
                problems.Add($"{at}.endPort: requires port");
            }
        }
    }

    private static void CheckSelector(V1LabelSelector? selector, string path, List<string> problems)
    {
        for (int i = 0; i < (selector?.MatchExpressions?.Count ?? 0); i++)
        {
            var expression = selector!.MatchExpressions![i];
            string at = $"{path}.matchExpressions[{i}]";
            if (!Operators.Contains(expression.OperatorProperty ?? ""))
            {
                problems.Add($"{at}.operator: '{expression.OperatorProperty}' is not In, NotIn, Exists or DoesNotExist");
                continue;
            }
            int values = expression.Values?.Count ?? 0;
            if (expression.OperatorProperty is "In" or "NotIn" && values == 0) problems.Add($"{at}.values: must be non-empty for {expression.OperatorProperty}");
            if (expression.OperatorProperty is "Exists" or "DoesNotExist" && values > 0) problems.Add($"{at}.values: must be empty for {expression.OperatorProperty}");
        }
    }
}
