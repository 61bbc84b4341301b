using Microsoft.Extensions.Logging;

namespace Tripline.Correlation.Kubernetes;

/// <summary>Log lines of the live cluster source; nothing is logged per event.</summary>
internal static partial class KubernetesSourceLog
{
    /// <summary>How the log names a kind's objects: ClusterNetworkPolicy, ClusterNetworkPolicies.</summary>
    public static string PluralOf(string kind) =>
        kind.EndsWith('y') && !kind.EndsWith("ey", StringComparison.Ordinal) ? kind[..^1] + "ies" : kind + "s";

    [LoggerMessage(EventId = 4100, Level = LogLevel.Information, Message = "{Resource}: first list done, {Count} objects at resourceVersion {ResourceVersion} in {ElapsedMs} ms")]
    public static partial void FirstSync(ILogger logger, string resource, int count, string? resourceVersion, long elapsedMs);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "{Resource}: relisted ({Reason}), {Count} objects, {Deleted} deletions missed while disconnected applied")]
    public static partial void Relisted(ILogger logger, string resource, string reason, int count, int deleted);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Debug, Message = "{Resource}: watch closed by the server after {Events} events; resuming at resourceVersion {ResourceVersion}")]
    public static partial void WatchClosed(ILogger logger, string resource, int events, string? resourceVersion);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Information, Message = "{Resource}: watch silent for {TimeoutSeconds} s, restarting at resourceVersion {ResourceVersion}")]
    public static partial void WatchSilent(ILogger logger, string resource, double timeoutSeconds, string? resourceVersion);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Information, Message = "{Resource}: resourceVersion {ResourceVersion} cannot be resumed ({Why}), relisting")]
    public static partial void Expired(ILogger logger, string resource, string? resourceVersion, string why);

    [LoggerMessage(EventId = 4105, Level = LogLevel.Warning, Message = "{Resource}: {Operation} failed ({Failures} in a row), retrying in {DelayMs} ms: {Error}")]
    public static partial void Failed(ILogger logger, string resource, string operation, int failures, long delayMs, string error);

    [LoggerMessage(EventId = 4106, Level = LogLevel.Warning, Message = "{Resource}: bad watch event, relisting to stay exact: {Error}")]
    public static partial void BadEvent(ILogger logger, string resource, string error);

    [LoggerMessage(EventId = 4107, Level = LogLevel.Warning, Message = "{Resource}: skipped object {Key}: {Error}")]
    public static partial void SkippedObject(ILogger logger, string resource, string key, string error);

    [LoggerMessage(EventId = 4108, Level = LogLevel.Information, Message = "cluster state synced: every resource has completed its first list, but for custom resources not installed or forbidden (snapshot {Version})")]
    public static partial void AllSynced(ILogger logger, long version);

    [LoggerMessage(EventId = 4109, Level = LogLevel.Information, Message = "{Resource}: synced={Synced} cached={Cached} events={Events} relists={Relists} watchRestarts={Restarts} lastEventAge={AgeSeconds:F0}s lastError={LastError}")]
    public static partial void Stats(ILogger logger, string resource, bool synced, int cached, long events, long relists, long restarts, double ageSeconds, string? lastError);

    [LoggerMessage(EventId = 4110, Level = LogLevel.Error, Message = "snapshot publication failed")]
    public static partial void PublishFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4111, Level = LogLevel.Information, Message = "{Resource}: the CRD is not installed ({Group}); {Kinds} are not judged until it is")]
    public static partial void NotInstalled(ILogger logger, string resource, string group, string kinds);

    [LoggerMessage(EventId = 4112, Level = LogLevel.Information, Message = "{Resource}: the CRD is installed now ({Group}); {Kinds} are judged from here on")]
    public static partial void Installed(ILogger logger, string resource, string group, string kinds);

    [LoggerMessage(EventId = 4113, Level = LogLevel.Warning, Message = "{Resource}: forbidden (403) to {Operation}; the ClusterRole lacks the rule apiGroups: [\"{Group}\"], resources: [\"{RuleResource}\"], verbs: [\"list\", \"watch\"] (deploy/daemonset.yaml has it); {Consequence}; retrying with backoff: {Error}")]
    public static partial void Forbidden(ILogger logger, string resource, string operation, string group, string ruleResource, string consequence, string error);

    [LoggerMessage(EventId = 4114, Level = LogLevel.Information, Message = "{Resource}: reading {Group}/{Version}")]
    public static partial void ServedVersion(ILogger logger, string resource, string group, string version);

    [LoggerMessage(EventId = 4115, Level = LogLevel.Information, Message = "{Resource}: not served ({Group}: 404); {Consequence}")]
    public static partial void NotServed(ILogger logger, string resource, string group, string consequence);

    [LoggerMessage(EventId = 4116, Level = LogLevel.Information, Message = "{Resource}: served now ({Group}); {Consequence}")]
    public static partial void ServedNow(ILogger logger, string resource, string group, string consequence);
}
