using System.ComponentModel;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using k8s;
using k8s.Authentication;
using k8s.Exceptions;
using k8s.KubeConfigModels;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Kubernetes;

/// <summary>
/// A kubeconfig user's exec credential plugin (<c>aws eks get-token</c>, <c>gke-gcloud-auth-plugin</c>, kubelogin),
/// run by the agent rather than by KubernetesClient, whose runner writes the plugin's request with reflection that
/// the published Native AOT executable does not have. The token is asked for again shortly before it expires.
/// Plugins that answer with a client certificate instead of a token are not supported.
/// </summary>
internal sealed class ExecCredentialPlugin : ITokenProvider
{
    private static readonly TimeSpan RefreshBeforeExpiry = TimeSpan.FromSeconds(30);
    private readonly ExternalExecution _exec;
    private readonly TimeSpan _timeout;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _token;
    private DateTimeOffset? _expires;

    private ExecCredentialPlugin(ExternalExecution exec, TimeSpan timeout)
    {
        _exec = exec;
        _timeout = timeout;
    }

    /// <summary>
    /// Builds the client configuration for <paramref name="context"/> (the current context when null). When its user
    /// authenticates through an exec plugin, the plugin is taken out of the configuration and run by this class.
    /// </summary>
    public static KubernetesClientConfiguration BuildConfiguration(K8SConfiguration config, string? context, TimeSpan timeout)
    {
        string? contextName = context ?? config.CurrentContext;
        string? userName = config.Contexts?.FirstOrDefault(c => c.Name == contextName)?.ContextDetails?.User;
        var credentials = config.Users?.FirstOrDefault(u => u.Name == userName)?.UserCredentials;
        if (credentials?.ExternalExecution is not { } exec)
        {
            return KubernetesClientConfiguration.BuildConfigFromConfigObject(config, context);
        }
        if (string.IsNullOrEmpty(exec.Command)) throw new KubeConfigException($"user {userName}: exec has no command");
        // KubernetesClient insists on some credential in the kubeconfig; this placeholder is replaced below and never sent.
        credentials.ExternalExecution = null;
        credentials.Token ??= "exec-plugin";
        var built = KubernetesClientConfiguration.BuildConfigFromConfigObject(config, context);
        built.AccessToken = null;
        built.TokenProvider = new ExecCredentialPlugin(exec, timeout);
        return built;
    }

    public async Task<AuthenticationHeaderValue> GetAuthenticationHeaderAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_token is null || (_expires is { } expires && expires - RefreshBeforeExpiry <= DateTimeOffset.UtcNow))
            {
                (_token, _expires) = await RunAsync(cancellationToken).ConfigureAwait(false);
            }
            return new AuthenticationHeaderValue("Bearer", _token);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<(string Token, DateTimeOffset? Expires)> RunAsync(CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(_exec.Command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in _exec.Arguments ?? []) start.ArgumentList.Add(argument);
        foreach (var variable in _exec.EnvironmentVariables ?? [])
        {
            if (variable.TryGetValue("name", out var name) && variable.TryGetValue("value", out var value)) start.Environment[name] = value;
        }
        start.Environment["KUBERNETES_EXEC_INFO"] = ExecInfo();
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new KubeConfigException($"exec plugin {_exec.Command} did not start");
        }
        catch (Win32Exception e)
        {
            throw new KubeConfigException($"exec plugin {_exec.Command}: {e.Message}{(string.IsNullOrEmpty(_exec.InstallHint) ? "" : "; " + _exec.InstallHint)}");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_timeout);
            try
            {
                await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                process.Kill(entireProcessTree: true);
                throw new KubeConfigException($"exec plugin {_exec.Command} gave no answer within {_timeout.TotalSeconds:0} s");
            }
            if (process.ExitCode != 0)
            {
                throw new KubeConfigException($"exec plugin {_exec.Command} exited with {process.ExitCode}: {(await stderr.ConfigureAwait(false)).Trim()}");
            }
            ExecCredentialResponse? response;
            try
            {
                response = JsonSerializer.Deserialize(await stdout.ConfigureAwait(false), ModelJsonContext.Default.ExecCredentialResponse);
            }
            catch (JsonException e)
            {
                throw new KubeConfigException($"exec plugin {_exec.Command} answered something other than an ExecCredential: {e.Message}");
            }
            if (response?.Status?.Token is not { Length: > 0 } token)
            {
                throw new KubeConfigException($"exec plugin {_exec.Command} answered without a token (client certificates from exec plugins are not supported)");
            }
            DateTimeOffset? expires = response.Status.ExpirationTimestamp is { } at ? new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)) : null;
            return (token, expires);
        }
    }

    /// <summary>The request KUBERNETES_EXEC_INFO carries: the API version the plugin must answer in, not interactive.</summary>
    private string ExecInfo()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("apiVersion", _exec.ApiVersion);
            writer.WriteString("kind", "ExecCredential");
            writer.WriteStartObject("spec");
            writer.WriteBoolean("interactive", false);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
