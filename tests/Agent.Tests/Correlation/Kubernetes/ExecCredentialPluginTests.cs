using k8s.Exceptions;
using k8s.KubeConfigModels;
using Tripline.Correlation.Kubernetes;
using Xunit;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// The agent runs a kubeconfig's exec credential plugin itself: the token it answers is sent, asked for again only
/// once it is about to expire, and a plugin that fails says why.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ExecCredentialPluginTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-exec-plugin-").FullName;

    private string Plugin(string body)
    {
        string path = Path.Combine(_dir, "plugin");
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private K8SConfiguration Config(string command) => new()
    {
        CurrentContext = "c",
        Clusters = [new Cluster { Name = "k", ClusterEndpoint = new ClusterEndpoint { Server = "https://127.0.0.1:6443", SkipTlsVerify = true } }],
        Contexts = [new Context { Name = "c", ContextDetails = new ContextDetails { Cluster = "k", User = "u" } }],
        Users = [new User
        {
            Name = "u",
            UserCredentials = new UserCredentials
            {
                ExternalExecution = new ExternalExecution
                {
                    ApiVersion = "client.authentication.k8s.io/v1beta1",
                    Command = command,
                    Arguments = ["--runs", Path.Combine(_dir, "runs")],
                    EnvironmentVariables = [new Dictionary<string, string> { ["name"] = "TOKEN_PREFIX", ["value"] = "tok" }],
                },
            },
        }],
    };

    private static string Answer(string expires) =>
        "echo run >> \"$2\"; printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s-%s\"," + expires + "}}' \"$TOKEN_PREFIX\" \"$(wc -l < \"$2\" | tr -d ' ')\"";

    [Fact]
    public async Task A_token_that_is_still_valid_is_reused_and_an_expiring_one_is_asked_for_again()
    {
        string later = DateTime.UtcNow.AddHours(1).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var valid = ExecCredentialPlugin.BuildConfiguration(Config(Plugin(Answer($"\"expirationTimestamp\":\"{later}\""))), null, TimeSpan.FromSeconds(10));
        Assert.Null(valid.AccessToken);
        Assert.Equal("tok-1", (await valid.TokenProvider.GetAuthenticationHeaderAsync(default)).Parameter);
        Assert.Equal("tok-1", (await valid.TokenProvider.GetAuthenticationHeaderAsync(default)).Parameter);

        File.Delete(Path.Combine(_dir, "runs"));
        string soon = DateTime.UtcNow.AddSeconds(5).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var expiring = ExecCredentialPlugin.BuildConfiguration(Config(Plugin(Answer($"\"expirationTimestamp\":\"{soon}\""))), null, TimeSpan.FromSeconds(10));
        Assert.Equal("tok-1", (await expiring.TokenProvider.GetAuthenticationHeaderAsync(default)).Parameter);
        Assert.Equal("tok-2", (await expiring.TokenProvider.GetAuthenticationHeaderAsync(default)).Parameter);
    }

    [Fact]
    public async Task A_failing_plugin_is_an_error_that_carries_what_it_said()
    {
        var config = ExecCredentialPlugin.BuildConfiguration(Config(Plugin("echo 'no credentials for profile prod' >&2; exit 3")), null, TimeSpan.FromSeconds(10));
        var error = await Assert.ThrowsAsync<KubeConfigException>(() => config.TokenProvider.GetAuthenticationHeaderAsync(default));
        Assert.Contains("exited with 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("no credentials for profile prod", error.Message, StringComparison.Ordinal);

        var missing = ExecCredentialPlugin.BuildConfiguration(Config(Path.Combine(_dir, "no-such-plugin")), null, TimeSpan.FromSeconds(10));
        Assert.Contains("no-such-plugin", (await Assert.ThrowsAsync<KubeConfigException>(() => missing.TokenProvider.GetAuthenticationHeaderAsync(default))).Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
