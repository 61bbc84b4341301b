using k8s;
using k8s.KubeConfigModels;
using Tripline.Correlation.Kubernetes;
using Xunit;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// The agent's own kubeconfig reader (the published executable cannot run KubernetesYaml) must read what
/// KubernetesClient's reader reads, field for field, and give the same client configuration.
/// </summary>
public sealed class KubeconfigReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-kubeconfig-").FullName;

    private const string Kubeconfig = """
        apiVersion: v1
        kind: Config
        current-context: dev
        preferences: {}
        clusters:
        - name: prod
          cluster:
            server: https://10.0.0.1:6443
            certificate-authority-data: Y2VydA==
            tls-server-name: api.prod
        - name: staging
          cluster:
            server: https://10.0.0.2:6443
            certificate-authority: certs/ca.crt
        - name: dev
          cluster:
            server: "https://127.0.0.1:8443"
            insecure-skip-tls-verify: true
            extensions:
            - name: client.authentication.k8s.io/exec
              extension: {audience: a}
        users:
        - name: alice
          user:
            token: s3cr3t
            as: bob
            as-groups: [admins, "devs"]
        - name: carol
          user:
            client-certificate: certs/carol.crt
            client-key: certs/carol.key
            username: carol
            password: "1234"
        - name: eks
          user:
            exec:
              apiVersion: client.authentication.k8s.io/v1beta1
              command: aws
              args: [eks, get-token, --cluster-name, prod]
              env:
              - name: AWS_PROFILE
                value: prod
              provideClusterInfo: false
              installHint: install the aws CLI
        - name: oidc
          user:
            auth-provider:
              name: oidc
              config: {client-id: tripline, idp-issuer-url: "https://issuer"}
        contexts:
        - name: dev
          context: {cluster: dev, user: alice, namespace: tripline}
        - name: prod
          context:
            cluster: prod
            user: alice
        """;

    [Fact]
    public async Task Read_AKubeconfig_ReadsWhatKubernetesClientReads()
    {
        string path = Path.Combine(_dir, "config");
        await File.WriteAllTextAsync(path, Kubeconfig);

        var ours = KubeconfigReader.Read(path);
        var theirs = await KubernetesClientConfiguration.LoadKubeConfigAsync(new FileInfo(path));

        Assert.Equal(Path.GetFullPath(path), ours.FileName);
        Assert.Equal(Summarize(theirs), Summarize(ours));
        // The same client configuration comes out of both, context by context.
        foreach (string context in new[] { "dev", "prod" })
        {
            var a = KubernetesClientConfiguration.BuildConfigFromConfigObject(ours, context);
            var b = KubernetesClientConfiguration.BuildConfigFromConfigObject(theirs, context);
            Assert.Equal((b.Host, b.Namespace, b.AccessToken, b.SkipTlsVerify, b.TlsServerName, b.ClientCertificateFilePath, b.ClientKeyFilePath, b.Username),
                (a.Host, a.Namespace, a.AccessToken, a.SkipTlsVerify, a.TlsServerName, a.ClientCertificateFilePath, a.ClientKeyFilePath, a.Username));
        }
    }

    [Theory]
    [InlineData("true", "tripline")]
    [InlineData("yes", "~")]
    [InlineData("On", "null")]
    [InlineData("off", "''")]
    [InlineData("no", "tripline")]
    [InlineData("FALSE", "~")]
    [InlineData("y", "tripline")]
    [InlineData("Null", "NULL")]
    public async Task Read_YamlSpellingsOfBooleansAndNulls_ReadAsKubernetesClientReadsThem(string skipTlsVerify, string ns)
    {
        string path = Path.Combine(_dir, "spellings");
        await File.WriteAllTextAsync(path, $$"""
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
            - name: dev
              cluster: {server: "https://127.0.0.1:8443", insecure-skip-tls-verify: {{skipTlsVerify}}}
            users:
            - name: alice
              user: {token: t}
            contexts:
            - name: dev
              context: {cluster: dev, user: alice, namespace: {{ns}}}
            """);

        var ours = KubeconfigReader.Read(path);
        var theirs = await KubernetesClientConfiguration.LoadKubeConfigAsync(new FileInfo(path));

        Assert.Equal(Summarize(theirs), Summarize(ours));
    }

    [Fact]
    public async Task Read_NotAMapping_IsAClearError()
    {
        string path = Path.Combine(_dir, "bad");
        await File.WriteAllTextAsync(path, "- just\n- a list\n");
        Assert.Contains("not a kubeconfig", Assert.Throws<InvalidDataException>(() => KubeconfigReader.Read(path)).Message, StringComparison.Ordinal);
    }

    private static string Summarize(K8SConfiguration c) => string.Join('\n', new[]
    {
        $"{c.ApiVersion} {c.Kind} {c.CurrentContext}",
    }
    .Concat(c.Clusters.Select(x => $"cluster {x.Name} {x.ClusterEndpoint?.Server} {x.ClusterEndpoint?.CertificateAuthority} {x.ClusterEndpoint?.CertificateAuthorityData} {x.ClusterEndpoint?.TlsServerName} {x.ClusterEndpoint?.SkipTlsVerify}"))
    .Concat(c.Users.Select(x => x.UserCredentials is not { } u ? $"user {x.Name}" :
        $"user {x.Name} {u.Token} {u.Impersonate} [{string.Join(',', u.ImpersonateGroups ?? [])}] {u.ClientCertificate} {u.ClientCertificateData} {u.ClientKey} {u.ClientKeyData} {u.UserName} {u.Password} " +
        $"{u.AuthProvider?.Name} [{string.Join(',', (u.AuthProvider?.Config ?? []).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))}] " +
        $"{u.ExternalExecution?.ApiVersion} {u.ExternalExecution?.Command} [{string.Join(',', u.ExternalExecution?.Arguments ?? [])}] " +
        $"[{string.Join(';', (u.ExternalExecution?.EnvironmentVariables ?? []).Select(e => string.Join(',', e.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))))}] {u.ExternalExecution?.InstallHint} {u.ExternalExecution?.ProvideClusterInfo}"))
    .Concat(c.Contexts.Select(x => $"context {x.Name} {x.ContextDetails?.Cluster} {x.ContextDetails?.User} {x.ContextDetails?.Namespace}")));

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
