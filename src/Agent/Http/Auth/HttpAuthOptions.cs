using System.Net;

namespace Tripline.Http.Auth;

/// <summary>How <c>/metrics</c> and <c>/api/v1/flows</c> are protected (design.md section 12).</summary>
internal enum HttpAuthMode
{
    /// <summary>TLS, and a bearer token the API server authenticates (TokenReview) and authorises (SubjectAccessReview).</summary>
    Kubernetes,

    /// <summary>No token asked; TLS only when a certificate is given.</summary>
    None,
}

/// <summary>The listener's doors: <c>--http-auth</c>, the serving certificate, and how long review answers are kept.</summary>
internal sealed record HttpAuthOptions
{
    /// <summary>What <c>--http-auth</c> said; null when not given, so that the default follows the cluster source.</summary>
    public HttpAuthMode? Mode { get; init; }
    public string? TlsCertFile { get; init; }
    public string? TlsPrivateKeyFile { get; init; }

    /// <summary>How long an authenticated token, and an allowed user and path, are trusted without asking again.</summary>
    public TimeSpan CacheTtl { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long a refused token, and a denied user and path, stay refused without asking again.</summary>
    public TimeSpan DenyCacheTtl { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait for a review: past it the request gets 503, never an open door.</summary>
    public TimeSpan ReviewTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>With state from the API, tokens are reviewed; with manifests there is no server to ask.</summary>
    public HttpAuthMode Effective(bool fromManifests) => Mode ?? (fromManifests ? HttpAuthMode.None : HttpAuthMode.Kubernetes);

    public bool Tls(bool fromManifests) => Effective(fromManifests) == HttpAuthMode.Kubernetes || TlsCertFile is not null;

    public IEnumerable<string> Validate(bool fromManifests, IPEndPoint listen)
    {
        if ((TlsCertFile is null) != (TlsPrivateKeyFile is null)) yield return "--tls-cert-file and --tls-private-key-file go together";
        if (TlsCertFile is not null && !File.Exists(TlsCertFile)) yield return $"--tls-cert-file: no such file: {TlsCertFile}";
        if (TlsPrivateKeyFile is not null && !File.Exists(TlsPrivateKeyFile)) yield return $"--tls-private-key-file: no such file: {TlsPrivateKeyFile}";
        if (CacheTtl < TimeSpan.Zero || CacheTtl > TimeSpan.FromHours(1)) yield return $"--http-auth-cache-ttl: must be between 0 and 1h (was {CacheTtl})";
        if (DenyCacheTtl < TimeSpan.Zero || DenyCacheTtl > TimeSpan.FromHours(1)) yield return $"--http-auth-deny-cache-ttl: must be between 0 and 1h (was {DenyCacheTtl})";
        if (ReviewTimeout < TimeSpan.FromMilliseconds(100) || ReviewTimeout > TimeSpan.FromMinutes(1)) yield return $"--http-auth-timeout: must be between 100ms and 1m (was {ReviewTimeout})";
        if (fromManifests && Mode == HttpAuthMode.Kubernetes)
        {
            yield return "--http-auth kubernetes: with --manifests there is no API server to review tokens; use --http-auth none on a loopback --listen";
        }
        if (fromManifests && Mode is null && !IPAddress.IsLoopback(listen.Address))
        {
            yield return $"--listen: {listen} is reachable from other hosts and, with --manifests, would serve /metrics and /api/v1/flows to anyone "
                + "(there is no API server to review tokens); listen on 127.0.0.1, or pass --http-auth none to serve it openly";
        }
    }
}
