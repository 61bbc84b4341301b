using Microsoft.Extensions.Logging.Abstractions;
using Tripline.Correlation.Kubernetes;
using Tripline.Http.Auth;

namespace Tripline.Tests.Http;

/// <summary>
/// Questions asked at once are asked of the API server once: a scrape that timed out and the next, or scrapers that
/// start together when the cache is cold, wait for the one review in flight (PrometheusTests saw two reviews where one
/// was expected when a slow first scrape overlapped the next).
/// </summary>
public sealed class BearerAuthorizationTests
{
    private sealed class GatedReviews : IAccessReviews
    {
        public readonly TaskCompletionSource Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Tokens;
        public int Access;

        public async Task<ReviewOutcome> ReviewTokenAsync(string token, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Tokens);
            await Gate.Task.WaitAsync(cancellationToken);
            return new ReviewOutcome(true, new ReviewedUser("scraper", null, ["system:authenticated"], new Dictionary<string, IReadOnlyList<string>>()), null);
        }

        public async Task<ReviewOutcome> ReviewNonResourceAccessAsync(ReviewedUser user, string path, string verb, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Access);
            await Gate.Task.WaitAsync(cancellationToken);
            return new ReviewOutcome(path == "/metrics", null, null);
        }
    }

    [Fact]
    public async Task ConcurrentRequests_ColdCache_OneReviewEach_AndOneClientLeavingCancelsNoOneElse()
    {
        var reviews = new GatedReviews();
        var auth = new BearerAuthorization(reviews, new HttpAuthOptions(), NullLogger.Instance);
        using var leaving = new CancellationTokenSource();
        var quitter = auth.DecideAsync("token", "/metrics", leaving.Token);
        var waiting = Enumerable.Range(0, 8).Select(_ => auth.DecideAsync("token", "/metrics", CancellationToken.None)).ToList();
        await leaving.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => quitter);

        reviews.Gate.SetResult();
        Assert.All(await Task.WhenAll(waiting), d => Assert.Equal(AccessDecision.Allowed, d));
        Assert.Equal(1, reviews.Tokens);
        Assert.Equal(1, reviews.Access);
        Assert.Equal(1, auth.TokenReviews);
        Assert.Equal(1, auth.AccessReviews);

        // Another path is another question; the token's answer is cached by now.
        Assert.Equal(AccessDecision.Forbidden, await auth.DecideAsync("token", "/api/v1/flows", CancellationToken.None));
        Assert.Equal(1, reviews.Tokens);
        Assert.Equal(2, reviews.Access);
    }
}
