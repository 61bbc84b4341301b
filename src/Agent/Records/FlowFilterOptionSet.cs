using System.CommandLine;
using Tripline.Cli;

namespace Tripline.Records;

/// <summary>The query filters of <c>tripline flows</c>, shared by every command that reads flow records.</summary>
internal sealed class FlowFilterOptionSet
{
    private readonly Option<string?> _namespace = EnvironmentDefaults.String("--namespace", "flows with either end in this namespace");
    private readonly Option<string?> _pod = EnvironmentDefaults.String("--pod", "flows with either end this pod (NAMESPACE/NAME)");
    private readonly Option<string?> _workload = EnvironmentDefaults.String("--workload", "flows with either end in this workload (Kind/name, or name)");
    private readonly Option<string?> _ip = EnvironmentDefaults.String("--ip", "flows with either end at this IP or in this CIDR");
    private readonly Option<string?> _port = EnvironmentDefaults.String("--port", "flows with either end on this port");
    private readonly Option<string?> _protocol = EnvironmentDefaults.String("--protocol", "TCP, UDP, SCTP, ICMP or ICMPv6");
    private readonly Option<string?> _verdict = EnvironmentDefaults.String("--verdict", "allow or deny");
    private readonly Option<string?> _enforcement = EnvironmentDefaults.String("--enforcement", "what the network did: not_enforced (denied, went through), enforced, dropped (allowed, lost), delivered or unknown");
    private readonly Option<string?> _policy = EnvironmentDefaults.String("--policy", "flows whose egress or ingress side lists this policy (ns/name, or name)");
    private readonly Option<string?> _tls = EnvironmentDefaults.String("--tls", "true or false: TCP flows whose first payload was (or was not) a TLS record; flows not known either way match neither");
    private readonly Option<string?> _since = EnvironmentDefaults.String("--since", "records at or after: a duration back from now (30m, 2h, 1d) or an RFC 3339 time");
    private readonly Option<string?> _until = EnvironmentDefaults.String("--until", "records at or before: an RFC 3339 time or a duration back from now");

    public void AddTo(Command command)
    {
        foreach (var option in new[] { _namespace, _pod, _workload, _ip, _port, _protocol, _verdict, _enforcement, _policy, _tls, _since, _until }) command.Add(option);
    }

    public FlowFilterOptions Bind(ParseResult parse) => new()
    {
        Namespace = parse.GetValue(_namespace),
        Pod = parse.GetValue(_pod),
        Workload = parse.GetValue(_workload),
        Ip = parse.GetValue(_ip),
        Port = parse.GetValue(_port),
        Protocol = parse.GetValue(_protocol),
        Verdict = parse.GetValue(_verdict),
        Enforcement = parse.GetValue(_enforcement),
        Policy = parse.GetValue(_policy),
        Tls = parse.GetValue(_tls),
        Since = parse.GetValue(_since),
        Until = parse.GetValue(_until),
    };
}
