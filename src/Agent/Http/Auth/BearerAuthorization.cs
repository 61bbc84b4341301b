using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Tripline.Correlation.Kubernetes;

namespace Tripline.Http.Auth;

/// <summary>What a request's token may do.</summary>
internal enum AccessDecision
{
    Allowed,
    /// <summary>No token, or one the API server does not know: 401.</summary>
    Unauthenticated,
    /// <summary>A known user the API server does not allow on the path: 403.</summary>
    Forbidden,
    /// <summary>The API server could not answer: 503, never an open door.</summary>
    Unavailable,
}

/// <summary>
/// Bearer tokens on every path but the probes, as kubelet and kube-rbac-proxy check them: a TokenReview says who the
/// token belongs to, a SubjectAccessReview of the non-resource path with verb <c>get</c> says whether that user may
/// read it. Answers are kept (successes for <see cref="HttpAuthOptions.CacheTtl"/>, refusals for
/// <see cref="HttpAuthOptions.DenyCacheTtl"/>), so a scrape every 15 s asks the API server nothing; an API server that
/// cannot answer is never remembered. Tokens are kept only as their SHA-256.
/// </summary>
internal sealed partial class BearerAuthorization
{
    /// <summary>Open to anyone: the kubelet's probes carry no token.</summary>
    public static readonly string[] OpenPaths = ["/healthz", "/readyz"];

    /// <summary>Entries kept per cache; a flood of made-up tokens clears the expired, then everything, never grows past it.</summary>
    internal const int MaxEntries = 4096;

    private readonly IAccessReviews _reviews;
    private readonly HttpAuthOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, (ReviewedUser? User, long Expires)> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (bool Allowed, long Expires)> _access = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<ReviewOutcome>>> _inFlight = new(StringComparer.Ordinal);
    private long _tokenReviews;
    private long _accessReviews;

    public BearerAuthorization(IAccessReviews reviews, HttpAuthOptions options, ILogger logger, TimeProvider? time = null)
    {
        _reviews = reviews;
        _options = options;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>TokenReviews and SubjectAccessReviews sent so far.</summary>
    public long TokenReviews => Interlocked.Read(ref _tokenReviews);

    public long AccessReviews => Interlocked.Read(ref _accessReviews);

    /// <summary>Middleware: probes pass, everything else needs a token allowed on its path.</summary>
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        string path = context.Request.Path.Value ?? "/";
        if (OpenPaths.Contains(path, StringComparer.OrdinalIgnoreCase))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        string? token = BearerToken(context.Request.Headers.Authorization.ToString());
        var decision = token is null ? AccessDecision.Unauthenticated : await DecideAsync(token, ReviewedPath(path), context.RequestAborted).ConfigureAwait(false);
        switch (decision)
        {
            case AccessDecision.Allowed:
                await next(context).ConfigureAwait(false);
                return;
            case AccessDecision.Unauthenticated:
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"tripline\"";
                await RefuseAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized: a bearer token the cluster knows is required\n").ConfigureAwait(false);
                return;
            case AccessDecision.Forbidden:
                await RefuseAsync(context, StatusCodes.Status403Forbidden, $"Forbidden: the token's user may not get {ReviewedPath(path)}\n").ConfigureAwait(false);
                return;
            default:
                context.Response.Headers.RetryAfter = "5";
                await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "Service Unavailable: the API server could not review the token; try again\n").ConfigureAwait(false);
                return;
        }
    }

    /// <summary>Who holds the token (cached), then whether they may get the path (cached).</summary>
    public async Task<AccessDecision> DecideAsync(string token, string path, CancellationToken cancellationToken)
    {
        long now = _time.GetTimestamp();
        string tokenKey = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        ReviewedUser? user;
        if (_tokens.TryGetValue(tokenKey, out var known) && known.Expires > now)
        {
            user = known.User;
        }
        else
        {
            ReviewOutcome outcome;
            try
            {
                outcome = await ReviewOnceAsync("token\n" + tokenKey, async ct =>
                {
                    // A review that ended since this request looked at the cache has answered already.
                    if (_tokens.TryGetValue(tokenKey, out var fresh) && fresh.Expires > _time.GetTimestamp()) return new ReviewOutcome(fresh.User is not null, fresh.User, null);
                    Interlocked.Increment(ref _tokenReviews);
                    var answer = await _reviews.ReviewTokenAsync(token, ct).ConfigureAwait(false);
                    var reviewed = answer.Allowed ? answer.User : null;
                    // Remembered before the review leaves the in-flight set, so that no request finds neither.
                    Remember(_tokens, tokenKey, (reviewed, Expiry(_time.GetTimestamp(), reviewed is not null)));
                    return answer;
                }, cancellationToken).ConfigureAwait(false);
            }
            catch (AccessReviewUnavailableException e)
            {
                LogUnavailable(_logger, path, e.Message);
                return AccessDecision.Unavailable;
            }
            user = outcome.Allowed ? outcome.User : null;
            if (user is null) LogUnauthenticated(_logger, path, outcome.Reason ?? "not authenticated");
        }
        if (user is null) return AccessDecision.Unauthenticated;

        string accessKey = string.Join('\n', [user.Name, user.Uid ?? "", string.Join(',', user.Groups), path]);
        if (_access.TryGetValue(accessKey, out var access) && access.Expires > now) return access.Allowed ? AccessDecision.Allowed : AccessDecision.Forbidden;
        ReviewOutcome review;
        try
        {
            review = await ReviewOnceAsync("access\n" + accessKey, async ct =>
            {
                if (_access.TryGetValue(accessKey, out var fresh) && fresh.Expires > _time.GetTimestamp()) return new ReviewOutcome(fresh.Allowed, null, null);
                Interlocked.Increment(ref _accessReviews);
                var answer = await _reviews.ReviewNonResourceAccessAsync(user, path, "get", ct).ConfigureAwait(false);
                Remember(_access, accessKey, (answer.Allowed, Expiry(_time.GetTimestamp(), answer.Allowed)));
                return answer;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (AccessReviewUnavailableException e)
        {
            LogUnavailable(_logger, path, e.Message);
            return AccessDecision.Unavailable;
        }
        if (!review.Allowed) LogForbidden(_logger, user.Name, path, review.Reason ?? "no rule allows it");
        return review.Allowed ? AccessDecision.Allowed : AccessDecision.Forbidden;
    }

    /// <summary>
    /// The path reviewed: an endpoint's own path however the request spelled it (routing ignores case and a trailing
    /// slash; RBAC's nonResourceURLs do not), so that a reader of <c>/metrics</c> is not refused <c>/metrics/</c>.
    /// </summary>
    internal static string ReviewedPath(string path)
    {
        string trimmed = path.Length > 1 ? path.TrimEnd('/') : path;
        foreach (string known in (ReadOnlySpan<string>)["/metrics", FlowsApi.Path])
        {
            if (string.Equals(trimmed, known, StringComparison.OrdinalIgnoreCase)) return known;
        }
        return path;
    }

    internal static string? BearerToken(string header)
    {
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return null;
        string token = header[scheme.Length..].Trim();
        return token.Length == 0 ? null : token;
    }

    /// <summary>
    /// One review per question at a time: requests that ask what is already being asked (a scrape that timed out and
    /// the next one, several scrapers starting at once after the cache expired) wait for that answer instead of asking
    /// the API server again. The review runs under its own timeout, not a request's: one client hanging up does not
    /// cancel the answer the others wait for.
    /// </summary>
    private Task<ReviewOutcome> ReviewOnceAsync(string key, Func<CancellationToken, Task<ReviewOutcome>> review, CancellationToken cancellationToken)
    {
        var mine = new Lazy<Task<ReviewOutcome>>(() => WithTimeoutAsync(review, CancellationToken.None), LazyThreadSafetyMode.ExecutionAndPublication);
        var shared = _inFlight.GetOrAdd(key, mine);
        var answer = shared.Value;
        if (ReferenceEquals(shared, mine))
        {
            _ = answer.ContinueWith(_ => _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<ReviewOutcome>>>(key, mine)), CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        return answer.WaitAsync(cancellationToken);
    }

    private async Task<ReviewOutcome> WithTimeoutAsync(Func<CancellationToken, Task<ReviewOutcome>> review, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ReviewTimeout);
        try
        {
            return await review(timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AccessReviewUnavailableException($"no answer within {_options.ReviewTimeout.TotalSeconds:0.###} s", e);
        }
        catch (Exception e) when (e is not AccessReviewUnavailableException and not OperationCanceledException)
        {
            // Whatever else the client throws (a malformed answer, a TLS failure): the door stays shut.
            throw new AccessReviewUnavailableException(e.Message, e);
        }
    }

    private long Expiry(long now, bool success) =>
        now + (long)((success ? _options.CacheTtl : _options.DenyCacheTtl).TotalSeconds * _time.TimestampFrequency);

    private void Remember<T>(ConcurrentDictionary<string, (T, long Expires)> cache, string key, (T, long Expires) entry)
    {
        if (cache.Count >= MaxEntries)
        {
            long now = _time.GetTimestamp();
            foreach (var (k, v) in cache)
            {
                if (v.Expires <= now) cache.TryRemove(k, out _);
            }
            if (cache.Count >= MaxEntries) cache.Clear();
        }
        cache[key] = entry;
    }

    private static async Task RefuseAsync(HttpContext context, int status, string body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Warning, Message = "refused a request to {Path} with 503: the API server could not review it ({Why})")]
    private static partial void LogUnavailable(ILogger logger, string path, string why);

    [LoggerMessage(EventId = 31, Level = LogLevel.Debug, Message = "refused a request to {Path} with 401: {Why}")]
    private static partial void LogUnauthenticated(ILogger logger, string path, string why);

    [LoggerMessage(EventId = 32, Level = LogLevel.Information, Message = "refused {User} a request to {Path} with 403: {Why}")]
    private static partial void LogForbidden(ILogger logger, string user, string path, string why);
}
