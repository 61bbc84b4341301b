using System.CommandLine;
using System.CommandLine.Help;
using System.Text.RegularExpressions;
using k8s.Models;
using Tripline.Cli;
using Tripline.Correlation.Kubernetes;
using Tripline.Export;
using Tripline.Hosting;

namespace Tripline.Tests.Deploy;

/// <summary>
/// deploy/daemonset.yaml against the code it deploys: the permissions the Kubernetes source uses, the variables
/// the agent reads, the endpoints it serves, and the least privilege capture needs.
/// </summary>
public sealed partial class DaemonSetManifestTests
{
    private static readonly string[] RecommendedLabels = ["app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"];

    [Fact]
    public void Load_EveryDocument_IsAKnownTypedObject()
    {
        var documents = DeployFiles.DaemonSetDocuments();

        var kinds = documents.Select(d => d.GetType()).ToList();
        Assert.Equal(
            new[] { typeof(V1Namespace), typeof(V1ServiceAccount), typeof(V1ClusterRole), typeof(V1ClusterRoleBinding), typeof(V1ClusterRole), typeof(V1PriorityClass), typeof(V1DaemonSet), typeof(V1Service) },
            kinds);
    }

    [Fact]
    public void Metadata_EveryDocument_CarriesTheRecommendedLabels()
    {
        foreach (var document in DeployFiles.DaemonSetDocuments().Cast<k8s.IKubernetesObject<V1ObjectMeta>>())
        {
            var labels = document.Metadata.Labels ?? new Dictionary<string, string>();
            foreach (string label in RecommendedLabels) Assert.True(labels.ContainsKey(label), $"{document.Metadata.Name}: missing label {label}");
            Assert.Equal("tripline", labels["app.kubernetes.io/name"]);
        }
        var template = DeployFiles.DaemonSet().Spec.Template.Metadata.Labels;
        Assert.Equal("tripline", template["app.kubernetes.io/name"]);
        Assert.True(template.ContainsKey("app.kubernetes.io/component"));
    }

    [Fact]
    public void ClusterRole_Rules_GrantExactlyWhatTheKubernetesSourceUses()
    {
        var role = AgentRole();

        var granted = new HashSet<(string, string, string)>();
        foreach (var rule in role.Rules)
        {
            Assert.Null(rule.ResourceNames);
            Assert.Null(rule.NonResourceURLs);
            foreach (string group in rule.ApiGroups)
            foreach (string resource in rule.Resources)
            foreach (string verb in rule.Verbs)
            {
                Assert.True(granted.Add((group, resource, verb)), $"granted twice: {group}/{resource} {verb}");
            }
        }
        var used = KubernetesClusterSource.RequiredAccess.Concat(KubernetesAccessReviews.RequiredAccess)
            .SelectMany(access => access.Verbs.Select(verb => (access.ApiGroup, access.Resource, verb)))
            .ToHashSet();

        Assert.Empty(granted.Except(used).Order());
        Assert.Empty(used.Except(granted).Order());
        Assert.DoesNotContain(granted, g => g.Item2 is "secrets" or "configmaps" || g.Item1 == "*" || g.Item2 == "*" || g.Item3 == "*");
        // Read-only, but for the two reviews, whose `create` asks a question and stores nothing.
        Assert.All(granted, g => Assert.True(g.Item3 is "get" or "list" or "watch" || (g.Item3 == "create" && g.Item2 is "tokenreviews" or "subjectaccessreviews"), $"{g}"));
    }

    [Fact]
    public void ReaderRole_GrantsGetOfTheProtectedPathsOnly_AndThePodMonitorBindsPrometheusToIt()
    {
        var reader = Assert.Single(DeployFiles.DaemonSetDocuments().OfType<V1ClusterRole>(), r => r.Metadata.Name == "tripline-flow-reader");
        var rule = Assert.Single(reader.Rules);
        Assert.Null(rule.Resources);
        Assert.Equal(["/api/v1/flows", "/metrics"], rule.NonResourceURLs.Order());
        Assert.Equal(["get"], rule.Verbs);

        var binding = DeployFiles.PodMonitorDocuments().Single<V1ClusterRoleBinding>();
        Assert.Equal(("ClusterRole", "tripline-flow-reader"), (binding.RoleRef.Kind, binding.RoleRef.Name));
        Assert.Equal("ServiceAccount", Assert.Single(binding.Subjects).Kind);

        var endpoint = Assert.Single(DeployFiles.PodMonitor().Spec.PodMetricsEndpoints);
        Assert.Equal("https", endpoint.Scheme);
        Assert.Equal("/var/run/secrets/kubernetes.io/serviceaccount/token", endpoint.BearerTokenFile);
        Assert.NotNull(endpoint.TlsConfig);
    }

    [Fact]
    public void DoorsAreLocked_TheAgentAsksForTokensAndItsProbesSpeakHttps()
    {
        var agent = DeployFiles.DaemonSet().Agent();
        Assert.Equal("kubernetes", Assert.Single(agent.Env, v => v.Name == EnvironmentDefaults.VariableName("--http-auth")).Value);
        Assert.Equal("HTTPS", agent.LivenessProbe.HttpGet.Scheme);
        Assert.Equal("HTTPS", agent.ReadinessProbe.HttpGet.Scheme);
        var service = DeployFiles.DaemonSetDocuments().Single<V1Service>();
        Assert.Equal("https", service.Metadata.Annotations["prometheus.io/scheme"]);
    }

    private static V1ClusterRole AgentRole() => Assert.Single(DeployFiles.DaemonSetDocuments().OfType<V1ClusterRole>(), r => r.Metadata.Name == "tripline");

    [Fact]
    public void TerminationGrace_LeavesTheAgentsOwnStopDeadlineRoomBeforeTheKill()
    {
        var daemonSet = DeployFiles.DaemonSet();
        var env = daemonSet.Agent().Env.Where(v => v.Value is not null).ToDictionary(v => v.Name, v => v.Value!);
        var problems = new List<string>();
        var deadline = RunCommand.ParseDuration(env.GetValueOrDefault("TRIPLINE_SHUTDOWN_TIMEOUT", "10s"), "--shutdown-timeout", problems);
        var flush = RunCommand.ParseDuration(env.GetValueOrDefault("TRIPLINE_FLOW_LOG_FLUSH_INTERVAL", "500ms"), "--flow-log-flush-interval", problems);
        Assert.Empty(problems);

        long grace = daemonSet.Spec.Template.Spec.TerminationGracePeriodSeconds ?? 30;
        // The kubelet's SIGKILL comes after the grace period: the agent must be done (or have given up cleanly) well before.
        Assert.True(grace >= deadline.TotalSeconds + 5, $"terminationGracePeriodSeconds {grace} leaves under 5 s after the agent's {deadline.TotalSeconds} s stop deadline");
        Assert.True(flush <= TimeSpan.FromSeconds(1), $"a crash may cost up to {flush.TotalSeconds} s of records; the promise is a second");
    }

    [Fact]
    public void ClusterRoleBinding_Subject_IsTheDaemonSetsServiceAccount()
    {
        var documents = DeployFiles.DaemonSetDocuments();
        var binding = documents.Single<V1ClusterRoleBinding>();
        var account = documents.Single<V1ServiceAccount>();
        var daemonSet = documents.Single<V1DaemonSet>();

        Assert.Equal("ClusterRole", binding.RoleRef.Kind);
        Assert.Equal(AgentRole().Metadata.Name, binding.RoleRef.Name);
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", account.Metadata.Name, account.Metadata.NamespaceProperty), (subject.Kind, subject.Name, subject.NamespaceProperty));
        Assert.Equal(account.Metadata.Name, daemonSet.Spec.Template.Spec.ServiceAccountName);
        Assert.Equal(documents.Single<V1Namespace>().Metadata.Name, daemonSet.Metadata.NamespaceProperty);
    }

    [Fact]
    public void SecurityContext_Agent_HasOnlyNetRawAndNoPrivilege()
    {
        var daemonSet = DeployFiles.DaemonSet();
        var security = daemonSet.Agent().SecurityContext;

        Assert.NotNull(security);
        Assert.Equal(new[] { "ALL" }, security.Capabilities.Drop);
        Assert.Equal(new[] { "NET_RAW" }, security.Capabilities.Add);
        Assert.False(security.Privileged ?? false, "privileged");
        Assert.True(security.ReadOnlyRootFilesystem, "readOnlyRootFilesystem");
        Assert.False(security.AllowPrivilegeEscalation ?? true, "allowPrivilegeEscalation");
        Assert.True(security.RunAsNonRoot, "runAsNonRoot");
        Assert.NotEqual(0, security.RunAsUser ?? 0);
        var pod = daemonSet.Spec.Template.Spec;
        Assert.False(pod.HostPID ?? false, "hostPID");
        Assert.False(pod.HostIPC ?? false, "hostIPC");
    }

    [Fact]
    public void SecurityContext_AgentUser_IsTheImagesUserAndOwnsTheFlowLogDirectory()
    {
        var daemonSet = DeployFiles.DaemonSet();
        long uid = daemonSet.Agent().SecurityContext.RunAsUser!.Value;
        string dockerfile = File.ReadAllText(DeployFiles.Path("Dockerfile"));

        // The runtime-deps base image's non-root user is APP_UID=1654; the image switches to it.
        Assert.Contains("USER $APP_UID", dockerfile, StringComparison.Ordinal);
        Assert.Equal(1654, uid);
        Assert.Contains("setcap cap_net_raw=ep /app/tripline", dockerfile, StringComparison.Ordinal);

        var init = Assert.Single(daemonSet.Spec.Template.Spec.InitContainers);
        Assert.Contains($"chown {uid}:{uid} ", string.Join(' ', init.Command), StringComparison.Ordinal);
        Assert.Equal(new[] { "ALL" }, init.SecurityContext.Capabilities.Drop);
        Assert.Equal(new[] { "CHOWN", "FOWNER" }, init.SecurityContext.Capabilities.Add.Order());
        Assert.False(init.SecurityContext.Privileged ?? false);
        Assert.False(init.SecurityContext.AllowPrivilegeEscalation ?? true);
        Assert.True(init.SecurityContext.ReadOnlyRootFilesystem);
        Assert.Equal(daemonSet.Agent().Image, init.Image);
    }

    [Fact]
    public void Pod_Networking_UsesTheHostNetworkWithClusterDns()
    {
        var pod = DeployFiles.DaemonSet().Spec.Template.Spec;

        Assert.True(pod.HostNetwork);
        Assert.Equal("ClusterFirstWithHostNet", pod.DnsPolicy);
    }

    [Fact]
    public void Env_EveryVariable_IsOneTheRunCommandDocuments()
    {
        var documented = RunCommandVariables();
        var env = DeployFiles.DaemonSet().Agent().Env;

        Assert.NotEmpty(env);
        foreach (var variable in env) Assert.True(documented.Contains(variable.Name), $"the DaemonSet sets {variable.Name}, which `tripline run` does not read");
        Assert.Equal(env.Count, env.Select(v => v.Name).Distinct().Count());
    }

    [Fact]
    public void Env_RunCommandDocumentation_NamesEachOptionsVariable()
    {
        // The variables are taken from the options' help text ("[env: …]"); this keeps that text true to what
        // EnvironmentDefaults reads, so the previous test checks against what the agent really reads.
        foreach (var option in RunOptions())
        {
            Assert.Contains(EnvironmentDefaults.VariableName(option.Name), DocumentedVariables(option));
        }
        Assert.Contains("NODE_NAME", RunCommandVariables());
    }

    [Fact]
    public void Env_NodeName_ComesFromTheDownwardApi()
    {
        var variable = Assert.Single(DeployFiles.DaemonSet().Agent().Env, v => v.Name == "NODE_NAME");

        Assert.Null(variable.Value);
        Assert.Equal("spec.nodeName", variable.ValueFrom.FieldRef.FieldPath);
    }

    [Fact]
    public void Probes_Agent_PointAtTheHealthAndReadinessEndpointsOnTheListenPort()
    {
        var agent = DeployFiles.DaemonSet().Agent();
        var port = Assert.Single(agent.Ports);
        string listen = Assert.Single(agent.Env, v => v.Name == EnvironmentDefaults.VariableName("--listen")).Value;

        Assert.True(AgentOptions.TryParseListen(listen, out var endpoint), listen);
        Assert.StartsWith(":", listen, StringComparison.Ordinal);
        Assert.Equal(endpoint.Port, port.ContainerPort);
        Assert.Equal("/healthz", agent.LivenessProbe.HttpGet.Path);
        Assert.Equal("/readyz", agent.ReadinessProbe.HttpGet.Path);
        Assert.Equal(port.Name, agent.LivenessProbe.HttpGet.Port.Value);
        Assert.Equal(port.Name, agent.ReadinessProbe.HttpGet.Port.Value);
    }

    [Fact]
    public void Resources_Agent_HasRequestsWithinLimits()
    {
        var resources = DeployFiles.DaemonSet().Agent().Resources;

        foreach (string name in new[] { "cpu", "memory" })
        {
            decimal request = resources.Requests[name].ToDecimal();
            decimal limit = resources.Limits[name].ToDecimal();
            Assert.True(request > 0 && request <= limit, $"{name}: request {request}, limit {limit}");
        }
        // The measured resident set of `tripline run` with its preallocated flow table is about 130 MiB.
        Assert.True(resources.Requests["memory"].ToDecimal() >= 192m * 1024 * 1024);
    }

    [Fact]
    public void Scheduling_DaemonSet_RunsOnEveryNodeWithItsPriorityAndRollsOut()
    {
        var documents = DeployFiles.DaemonSetDocuments();
        var daemonSet = documents.Single<V1DaemonSet>();
        var pod = daemonSet.Spec.Template.Spec;

        // An empty key with operator Exists tolerates every taint, control-plane and NoExecute ones included.
        Assert.Contains(pod.Tolerations, t => t.OperatorProperty == "Exists" && t.Key is null && t.Effect is null);
        Assert.Null(pod.NodeSelector);
        Assert.Null(pod.Affinity);
        var priority = documents.Single<V1PriorityClass>();
        Assert.Equal(priority.Metadata.Name, pod.PriorityClassName);
        Assert.True(priority.Value is > 0 and < 2_000_000_000, "below the system-* classes");
        Assert.Equal("RollingUpdate", daemonSet.Spec.UpdateStrategy.Type);
        Assert.Equal("0", daemonSet.Spec.UpdateStrategy.RollingUpdate.MaxSurge.Value);
    }

    [Fact]
    public void FlowLog_Path_IsOnTheHostPathVolume()
    {
        var daemonSet = DeployFiles.DaemonSet();
        var agent = daemonSet.Agent();
        string flowLog = Assert.Single(agent.Env, v => v.Name == EnvironmentDefaults.VariableName("--flow-log")).Value;

        var mount = Assert.Single(agent.VolumeMounts, m => flowLog == m.MountPath || flowLog.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal));
        var volume = Assert.Single(daemonSet.Spec.Template.Spec.Volumes, v => v.Name == mount.Name);
        Assert.NotNull(volume.HostPath);
        Assert.Equal("DirectoryOrCreate", volume.HostPath.Type);
        Assert.False(mount.ReadOnlyProperty ?? false);
    }

    [Fact]
    public void FlowLog_Retention_BoundsTheHostDiskItTakes()
    {
        var env = DeployFiles.DaemonSet().Agent().Env.ToDictionary(v => v.Name, v => v.Value ?? "");

        Assert.True(FlowLogOptions.TryParseSize(env[EnvironmentDefaults.VariableName("--flow-log-max-size")], out long fileBytes));
        Assert.True(FlowLogOptions.TryParseSize(env[EnvironmentDefaults.VariableName("--flow-log-max-total")], out long totalBytes));
        int files = int.Parse(env[EnvironmentDefaults.VariableName("--flow-log-max-files")], System.Globalization.CultureInfo.InvariantCulture);
        var options = new FlowLogOptions { MaxFileBytes = fileBytes, MaxTotalBytes = totalBytes, MaxFiles = files };
        Assert.Empty(options.Validate());
        Assert.True(totalBytes <= 4L << 30, "at most 4 GiB of a node's disk");
    }

    [Fact]
    public void Service_Selector_ReachesTheAgentsMetricsPort()
    {
        var documents = DeployFiles.DaemonSetDocuments();
        var service = documents.Single<V1Service>();
        var daemonSet = documents.Single<V1DaemonSet>();
        var podLabels = daemonSet.Spec.Template.Metadata.Labels;

        Assert.All(service.Spec.Selector, s => Assert.Equal(s.Value, podLabels[s.Key]));
        Assert.Equal("None", service.Spec.ClusterIP);
        var port = Assert.Single(service.Spec.Ports);
        var containerPort = Assert.Single(daemonSet.Agent().Ports, p => p.Name == port.TargetPort.Value);
        Assert.Equal("true", service.Metadata.Annotations["prometheus.io/scrape"]);
        Assert.Equal(containerPort.ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture), service.Metadata.Annotations["prometheus.io/port"]);
        Assert.Equal("/metrics", service.Metadata.Annotations["prometheus.io/path"]);
        // Pods are not annotated as well: a Prometheus discovering both would scrape every agent twice.
        Assert.Null(daemonSet.Spec.Template.Metadata.Annotations);
    }

    [Fact]
    public void PodMonitor_Endpoint_ScrapesTheAgentsMetricsPort()
    {
        var monitor = DeployFiles.PodMonitor();
        var daemonSet = DeployFiles.DaemonSet();

        Assert.Equal(("monitoring.coreos.com/v1", "PodMonitor"), (monitor.ApiVersion, monitor.Kind));
        Assert.Equal(daemonSet.Metadata.NamespaceProperty, monitor.Metadata.NamespaceProperty);
        Assert.All(monitor.Spec.Selector.MatchLabels, s => Assert.Equal(s.Value, daemonSet.Spec.Template.Metadata.Labels[s.Key]));
        var endpoint = Assert.Single(monitor.Spec.PodMetricsEndpoints);
        Assert.Contains(daemonSet.Agent().Ports, p => p.Name == endpoint.Port);
        Assert.Equal("/metrics", endpoint.Path);
        // The job label comes from a pod label, so that alerts can select job="tripline".
        Assert.Equal("tripline", daemonSet.Spec.Template.Metadata.Labels[monitor.Spec.JobLabel!]);
    }

    /// <summary>Every variable `tripline run` documents in its options' help text: "[env: TRIPLINE_X, NODE_NAME]".</summary>
    internal static HashSet<string> RunCommandVariables() => RunOptions().SelectMany(DocumentedVariables).ToHashSet(StringComparer.Ordinal);

    private static IEnumerable<Option> RunOptions()
    {
        var run = Assert.Single(TriplineCommand.Create().Subcommands, c => c.Name == "run");
        return run.Options.Where(o => o is not HelpOption && o.Name.StartsWith("--", StringComparison.Ordinal));
    }

    private static IEnumerable<string> DocumentedVariables(Option option)
    {
        var match = EnvNote().Match(option.Description ?? "");
        Assert.True(match.Success, $"{option.Name}: its description does not name its environment variable");
        return match.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries).Where(v => VariableName().IsMatch(v));
    }

    [GeneratedRegex(@"\[env: ([^\]]+)\]")]
    private static partial Regex EnvNote();

    [GeneratedRegex("^[A-Z][A-Z0-9_]*$")]
    private static partial Regex VariableName();
}
