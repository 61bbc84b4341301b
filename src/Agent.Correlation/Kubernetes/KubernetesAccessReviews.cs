using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Tripline.Correlation.Kubernetes;

/// <summary>Who a bearer token belongs to, as the API server's TokenReview says.</summary>
public sealed record ReviewedUser(string Name, string? Uid, IReadOnlyList<string> Groups, IReadOnlyDictionary<string, IReadOnlyList<string>> Extra);

/// <summary>The answer of a review: <see cref="Allowed"/> or not, and the server's reason when it gave one.</summary>
public readonly record struct ReviewOutcome(bool Allowed, ReviewedUser? User, string? Reason);

/// <summary>
/// Asks the API server who holds a token and whether that user may do something, as kubelet and metrics-server do
/// for their own endpoints. Throws <see cref="AccessReviewUnavailableException"/> when the server cannot answer
/// (unreachable, an error status, too slow): the caller must then refuse, never guess.
/// </summary>
public interface IAccessReviews
{
    /// <summary>A TokenReview: authenticated (with the user) or not.</summary>
    Task<ReviewOutcome> ReviewTokenAsync(string token, CancellationToken cancellationToken);

    /// <summary>A SubjectAccessReview of a non-resource path (<c>/metrics</c>) and verb (<c>get</c>).</summary>
    Task<ReviewOutcome> ReviewNonResourceAccessAsync(ReviewedUser user, string path, string verb, CancellationToken cancellationToken);
}

/// <summary>The API server could not answer a review.</summary>
public sealed class AccessReviewUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

public sealed class KubernetesAccessReviews : IAccessReviews
{
    /// <summary>The RBAC the reviews need: <c>create</c> of the two review kinds, nothing else (deploy/daemonset.yaml).</summary>
    public static IReadOnlyList<(string ApiGroup, string Resource, string[] Verbs)> RequiredAccess { get; } =
    [
        ("authentication.k8s.io", "tokenreviews", ["create"]),
        ("authorization.k8s.io", "subjectaccessreviews", ["create"]),
    ];

    private readonly IKubernetes _client;

    internal KubernetesAccessReviews(IKubernetes client) => _client = client;

    public async Task<ReviewOutcome> ReviewTokenAsync(string token, CancellationToken cancellationToken)
    {
        var review = new V1TokenReview { ApiVersion = "authentication.k8s.io/v1", Kind = "TokenReview", Spec = new V1TokenReviewSpec { Token = token } };
        var answer = await CallAsync(() => _client.AuthenticationV1.CreateTokenReviewAsync(review, cancellationToken: cancellationToken), "TokenReview").ConfigureAwait(false);
        var status = answer.Status;
        if (status?.Authenticated != true || status.User?.Username is not { Length: > 0 } name) return new ReviewOutcome(false, null, status?.Error);
        var user = new ReviewedUser(
            name,
            status.User.Uid,
            [.. status.User.Groups ?? []],
            (status.User.Extra ?? new Dictionary<string, IList<string>>()).ToDictionary(e => e.Key, e => (IReadOnlyList<string>)[.. e.Value], StringComparer.Ordinal));
        return new ReviewOutcome(true, user, null);
    }

    public async Task<ReviewOutcome> ReviewNonResourceAccessAsync(ReviewedUser user, string path, string verb, CancellationToken cancellationToken)
    {
        var review = new V1SubjectAccessReview
        {
            ApiVersion = "authorization.k8s.io/v1",
            Kind = "SubjectAccessReview",
            Spec = new V1SubjectAccessReviewSpec
            {
                User = user.Name,
                Uid = user.Uid,
                Groups = [.. user.Groups],
                Extra = user.Extra.Count == 0 ? null : user.Extra.ToDictionary(e => e.Key, e => (IList<string>)[.. e.Value], StringComparer.Ordinal),
                NonResourceAttributes = new V1NonResourceAttributes { Path = path, Verb = verb },
            },
        };
        var answer = await CallAsync(() => _client.AuthorizationV1.CreateSubjectAccessReviewAsync(review, cancellationToken: cancellationToken), "SubjectAccessReview").ConfigureAwait(false);
        var status = answer.Status;
        bool allowed = status is { Allowed: true } && status.Denied != true;
        return new ReviewOutcome(allowed, user, status?.Reason ?? status?.EvaluationError);
    }

    private static async Task<T> CallAsync<T>(Func<Task<T>> call, string kind)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (HttpOperationException e)
        {
            throw new AccessReviewUnavailableException($"{kind}: the API server answered {(int)e.Response.StatusCode} {e.Response.ReasonPhrase}", e);
        }
        catch (HttpRequestException e)
        {
            throw new AccessReviewUnavailableException($"{kind}: {e.Message}", e);
        }
        catch (OperationCanceledException e)
        {
            throw new AccessReviewUnavailableException($"{kind}: no answer in time", e);
        }
    }
}
