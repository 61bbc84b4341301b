using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Tripline.Export;
using Tripline.Records;

namespace Tripline.Cli;

/// <summary>
/// <c>tripline flows --agent URL</c>: reads a running agent's <c>/api/v1/flows</c> with the query's filters, over TLS
/// with a bearer token, so that a responder need not log into the node. The lines go through the same filter and
/// printer as the files' records.
/// </summary>
internal static class RemoteFlows
{
    /// <summary>Where a pod's service account token is mounted: the default token when the command runs in a pod.</summary>
    internal const string ServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token";

    public static int Read(FlowsCommand.FlowsOptions options, FlowLineHandler onLine, Stream output, TextWriter stderr, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(options.Agent, UriKind.Absolute, out var agent) || agent.Scheme is not ("https" or "http"))
        {
            stderr.WriteLine($"tripline flows: --agent: '{options.Agent}' is not an https:// address (for example https://10.0.0.5:9477)");
            return ExitCodes.BadUsage;
        }
        string? token;
        X509Certificate2Collection? trusted = null;
        try
        {
            string? tokenFile = options.TokenFile ?? (File.Exists(ServiceAccountTokenFile) ? ServiceAccountTokenFile : null);
            token = tokenFile is null ? null : File.ReadAllText(tokenFile).Trim();
            if (options.CaFile is { } caFile)
            {
                trusted = [];
                trusted.ImportFromPemFile(caFile);
                if (trusted.Count == 0) throw new IOException($"{caFile} holds no PEM certificate");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            stderr.WriteLine($"tripline flows: {(e.Message.Contains(options.CaFile ?? "\0", StringComparison.Ordinal) ? "--ca-file" : "--token-file")}: {e.Message}");
            return ExitCodes.BadUsage;
        }

        using var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => Trust(certificate, errors, trusted, options.InsecureSkipTlsVerify);
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(agent, Tripline.Http.FlowsApi.Path + Query(options)));
        if (token is { Length: > 0 }) request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connect.CancelAfter(TimeSpan.FromSeconds(30));
            using var response = client.Send(request, HttpCompletionOption.ResponseHeadersRead, connect.Token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                using var reader = new StreamReader(response.Content.ReadAsStream(cancellationToken));
                string body = reader.ReadToEnd().Trim();
                stderr.WriteLine($"tripline flows: {agent} answered {(int)response.StatusCode} {response.ReasonPhrase}: {body}" + Hint(response.StatusCode, token));
                return ExitCodes.RuntimeFailure;
            }
            using var stream = response.Content.ReadAsStream(cancellationToken);
            using var stop = cancellationToken.Register(stream.Dispose);
            var lines = new LineReader(stream);
            while (!cancellationToken.IsCancellationRequested && lines.TryReadLine(out var line, final: true))
            {
                onLine(line);
                if (options.Follow) output.Flush();
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            if (cancellationToken.IsCancellationRequested) return ExitCodes.Success;
            stderr.WriteLine($"tripline flows: {agent}: {Describe(e)}");
            return ExitCodes.RuntimeFailure;
        }
        return ExitCodes.Success;
    }

    /// <summary>The filters as <c>/api/v1/flows</c> takes them; the agent returns everything its ring holds that matches.</summary>
    internal static string Query(FlowsCommand.FlowsOptions options)
    {
        var filter = options.Filter;
        var pairs = new List<string> { "limit=" + int.MaxValue.ToString(CultureInfo.InvariantCulture) };
        void Add(string name, string? value)
        {
            if (!string.IsNullOrEmpty(value)) pairs.Add(name + "=" + Uri.EscapeDataString(value));
        }
        Add("namespace", filter.Namespace);
        Add("pod", filter.Pod);
        Add("workload", filter.Workload);
        Add("ip", filter.Ip);
        Add("port", filter.Port);
        Add("protocol", filter.Protocol);
        Add("verdict", filter.Verdict);
        Add("enforcement", filter.Enforcement);
        Add("policy", filter.Policy);
        Add("tls", filter.Tls);
        Add("since", filter.Since);
        Add("until", filter.Until);
        if (options.Follow) pairs.Add("follow=true");
        return "?" + string.Join('&', pairs);
    }

    /// <summary>A certificate the chain trusts; with <c>--ca-file</c>, one of its certificates itself (pinned) or one it issued.</summary>
    private static bool Trust(X509Certificate? presented, SslPolicyErrors errors, X509Certificate2Collection? trusted, bool insecure)
    {
        if (insecure) return true;
        if (trusted is null) return errors == SslPolicyErrors.None;
        if (presented is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) return false;
        using var certificate = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        foreach (var pinned in trusted)
        {
            if (pinned.RawData.AsSpan().SequenceEqual(certificate.RawData)) return true;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // The name is still checked: only the chain's anchor changes.
        return chain.Build(certificate) && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0;
    }

    private static string Hint(HttpStatusCode status, string? token) => status switch
    {
        HttpStatusCode.Unauthorized when token is null => " (no token: pass --token-file)",
        HttpStatusCode.Unauthorized => " (the cluster does not know the token)",
        HttpStatusCode.Forbidden => " (bind the token's user to the ClusterRole tripline-flow-reader)",
        _ => "",
    };

    private static string Describe(Exception e) =>
        e.InnerException is System.Security.Authentication.AuthenticationException
            ? "the agent's certificate is not trusted: pass --ca-file (its CA, or its own certificate) or --insecure-skip-tls-verify"
            : e.InnerException?.Message ?? e.Message;
}
