using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// The API server's <c>tokenreviews</c> and <c>subjectaccessreviews</c>: tokens map to users and groups, and RBAC's
/// non-resource rules are grants of a verb on a path to a user or a group (a trailing <c>*</c> matches a prefix, as
/// in a ClusterRole). Counts every review, and answers slowly or with an error when told to.
/// </summary>
public sealed class AccessReviewService
{
    public const string TokenReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews";
    public const string SubjectAccessReviewPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

    private readonly ConcurrentDictionary<string, (string User, string[] Groups)> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Subject, string Path, string Verb), bool> _grants = new();
    private readonly ConcurrentQueue<(string User, string Path, string Verb)> _accessReviews = new();
    private int _tokenReviews;

    /// <summary>Added before every review's answer (an API server under load).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>When set, reviews answer this status (500, say) with a Status body instead of a review.</summary>
    public int? FailWith { get; set; }

    public int TokenReviews => Volatile.Read(ref _tokenReviews);

    public int SubjectAccessReviews => _accessReviews.Count;

    /// <summary>The SubjectAccessReviews asked so far (user, non-resource path, verb).</summary>
    public IReadOnlyCollection<(string User, string Path, string Verb)> AccessReviewsAsked => _accessReviews;

    public void AddToken(string token, string user, params string[] groups) => _tokens[token] = (user, groups);

    /// <summary>Allows <paramref name="subject"/> (a user or a group) the verb on the path, as a ClusterRole bound to it would.</summary>
    public void Grant(string subject, string path, string verb = "get") => _grants[(subject, path, verb)] = true;

    public bool Handles(string? path) => path is TokenReviewPath or SubjectAccessReviewPath;

    public async Task HandleAsync(HttpContext context)
    {
        var body = await JsonNode.ParseAsync(context.Request.Body).ConfigureAwait(false) ?? throw new InvalidOperationException("empty review");
        if (Delay > TimeSpan.Zero) await Task.Delay(Delay, context.RequestAborted).ConfigureAwait(false);
        JsonObject answer;
        if (context.Request.Path.Value == TokenReviewPath)
        {
            Interlocked.Increment(ref _tokenReviews);
            string token = (string?)body["spec"]?["token"] ?? "";
            answer = _tokens.TryGetValue(token, out var user)
                ? Review("authentication.k8s.io/v1", "TokenReview", new JsonObject
                {
                    ["authenticated"] = true,
                    ["user"] = new JsonObject { ["username"] = user.User, ["uid"] = "uid-" + user.User, ["groups"] = new JsonArray([.. user.Groups.Select(g => (JsonNode)g)]) },
                })
                : Review("authentication.k8s.io/v1", "TokenReview", new JsonObject { ["authenticated"] = false, ["error"] = "invalid bearer token" });
        }
        else
        {
            var spec = body["spec"];
            string user = (string?)spec?["user"] ?? "";
            string[] groups = spec?["groups"]?.AsArray().Select(g => (string?)g ?? "").ToArray() ?? [];
            string path = (string?)spec?["nonResourceAttributes"]?["path"] ?? "";
            string verb = (string?)spec?["nonResourceAttributes"]?["verb"] ?? "";
            _accessReviews.Enqueue((user, path, verb));
            bool allowed = groups.Append(user).Any(subject => _grants.Keys.Any(g => g.Subject == subject && g.Verb == verb && Matches(g.Path, path)));
            answer = Review("authorization.k8s.io/v1", "SubjectAccessReview", allowed
                ? new JsonObject { ["allowed"] = true, ["reason"] = "RBAC: allowed by ClusterRoleBinding" }
                : new JsonObject { ["allowed"] = false });
        }
        if (FailWith is { } code)
        {
            context.Response.StatusCode = code;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync($"{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"internal error\",\"reason\":\"InternalError\",\"code\":{code}}}").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = 201;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(answer.ToJsonString()).ConfigureAwait(false);
    }

    private static bool Matches(string rule, string path) =>
        rule.EndsWith('*') ? path.StartsWith(rule[..^1], StringComparison.Ordinal) : rule == path;

    private static JsonObject Review(string apiVersion, string kind, JsonObject status) => new()
    {
        ["apiVersion"] = apiVersion,
        ["kind"] = kind,
        ["metadata"] = new JsonObject(),
        ["status"] = status,
    };
}
