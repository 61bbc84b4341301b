using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Tripline.Tests.Correlation.Kubernetes;

/// <summary>
/// An API server in the test process, on loopback over HTTPS with a throwaway certificate, that speaks list and watch
/// as the real one does: paginated lists with <c>limit</c>/<c>continue</c> and a resourceVersion, chunked watch
/// streams written and flushed one event per line, BOOKMARK events, and 410 Gone as an ERROR event carrying a Status.
/// The agent reaches it through KubernetesClient and a generated kubeconfig, exactly as in a cluster. Faults are
/// injected through its methods. The custom resources (the admin policy CRDs, <see cref="ApiResource.AdminPolicies"/>,
/// and Calico's kinds in both groups, <see cref="ApiResource.Calico"/> and <see cref="ApiResource.CalicoCrds"/>) are
/// installed, with every version served, until a test uninstalls one or serves it at fewer versions, so that every
/// resource the agent reads takes part in every test; any resource can be forbidden.
/// </summary>
public sealed class TestApiServer : IAsyncDisposable
{
    public const string Token = "tripline-test-token";

    private static readonly Lazy<X509Certificate2> LoopbackCertificate = new(() => CreateCertificate(IPAddress.Loopback));

    private readonly ConcurrentDictionary<string, (string[] Items, long Revision)> _listSnapshots = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _listGates = new();
    private readonly ConcurrentDictionary<string, int> _listRequests = new();
    private readonly ConcurrentDictionary<string, int> _watchRequests = new();
    private readonly ConcurrentDictionary<string, int> _notFound = new();
    private readonly ConcurrentDictionary<string, int> _forbiddenAnswers = new();
    private readonly ConcurrentDictionary<string, string[]> _servedVersions = new();
    private readonly ConcurrentDictionary<string, bool> _forbidden = new();
    private readonly object _stallGate = new();
    private TaskCompletionSource _resume = CompletedSource();
    private WebApplication? _app;
    private int _port;
    private int _failNextContinue;
    private string? _kubeconfigPath;
    private readonly IPAddress _address;
    private readonly X509Certificate2 _certificate;

    /// <param name="address">Where to listen: loopback, or an address that a network namespace can reach (its certificate names it).</param>
    public TestApiServer(TimeProvider? time = null, IPAddress? address = null)
    {
        Store = new ObjectStore(time ?? TimeProvider.System);
        _address = address ?? IPAddress.Loopback;
        _certificate = _address.Equals(IPAddress.Loopback) ? LoopbackCertificate.Value : CreateCertificate(_address);
    }

    public ObjectStore Store { get; }

    /// <summary>TokenReview and SubjectAccessReview: the tokens it knows and what their users may get.</summary>
    public AccessReviewService Reviews { get; } = new();

    /// <summary>How often an idle watch that asked for bookmarks gets one.</summary>
    public TimeSpan BookmarkInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Added before every response (a slow or overloaded server).</summary>
    public TimeSpan ResponseDelay { get; set; }

    public Uri BaseUri => new($"https://{_address}:{_port}");

    public int ListRequests(ApiResource resource) => _listRequests.GetValueOrDefault(resource.Name);

    public int WatchRequests(ApiResource resource) => _watchRequests.GetValueOrDefault(resource.Name);

    /// <summary>Requests of a custom resource answered 404 (not installed, or not at the version asked for).</summary>
    public int NotFoundRequests(ApiResource resource) => _notFound.GetValueOrDefault(resource.Name);

    /// <summary>Requests of a resource answered 403 (<see cref="Forbid"/>).</summary>
    public int ForbiddenRequests(ApiResource resource) => _forbiddenAnswers.GetValueOrDefault(resource.Name);

    /// <summary>The versions of a custom resource served now, newest first; empty when its CRD is not installed.</summary>
    public IReadOnlyList<string> ServedVersions(ApiResource resource) =>
        resource.IsCustom ? _servedVersions.GetValueOrDefault(resource.Name, [.. resource.Versions]) : [resource.ApiVersion];

    /// <summary>Whether the resource is served and allowed now: what a client can read of it.</summary>
    public bool IsReadable(ApiResource resource) => ServedVersions(resource).Count > 0 && !_forbidden.ContainsKey(resource.Name) && !_unavailable.ContainsKey(resource.Name);

    /// <summary>
    /// Deletes a custom resource's CRD: every version answers 404, as for a group the server does not know, and its
    /// open watches end. Its objects stay in the store (a real server deletes them with the CRD), so that a test can
    /// stage objects and then install the CRD with them.
    /// </summary>
    public void UninstallCustomResource(ApiResource resource)
    {
        Serve(resource, []);
        Store.EndWatches(resource);
    }

    /// <summary>Installs a custom resource's CRD serving <paramref name="versions"/> (every version it has when none are named).</summary>
    public void InstallCustomResource(ApiResource resource, params string[] versions) =>
        Serve(resource, versions.Length == 0 ? [.. resource.Versions] : versions);

    private void Serve(ApiResource resource, string[] versions)
    {
        if (!resource.IsCustom) throw new ArgumentException($"{resource.Name} is not a custom resource", nameof(resource));
        if (versions.Except(resource.Versions).FirstOrDefault() is { } unknown) throw new ArgumentException($"{resource.Name} has no version {unknown}", nameof(versions));
        _servedVersions[resource.Name] = versions;
    }

    /// <summary>RBAC without a rule for the resource: lists and watches of it answer 403 until <see cref="Permit"/>.</summary>
    public void Forbid(ApiResource resource)
    {
        _forbidden[resource.Name] = true;
        Store.EndWatches(resource);
    }

    public void Permit(ApiResource resource) => _forbidden.TryRemove(resource.Name, out _);

    /// <summary>
    /// The resource's API server is down (an aggregated API such as Calico's whose pods are not ready): every request
    /// for it answers 503 until <see cref="Restore"/>.
    /// </summary>
    public void MakeUnavailable(ApiResource resource)
    {
        _unavailable[resource.Name] = true;
        Store.EndWatches(resource);
    }

    public void Restore(ApiResource resource) => _unavailable.TryRemove(resource.Name, out _);

    public int UnavailableAnswers(ApiResource resource) => _unavailableAnswers.GetValueOrDefault(resource.Name);

    private readonly ConcurrentDictionary<string, bool> _unavailable = new();
    private readonly ConcurrentDictionary<string, int> _unavailableAnswers = new();

    public int OpenWatchCount => Store.OpenWatches().Count;

    public static async Task<TestApiServer> StartAsync(TimeProvider? time = null, IPAddress? address = null)
    {
        var server = new TestApiServer(time, address);
        await server.ListenAsync().ConfigureAwait(false);
        return server;
    }

    /// <summary>A kubeconfig with the server, its CA and a bearer token, as <c>kubectl</c> would write it.</summary>
    public string WriteKubeconfig()
    {
        string ca = Convert.ToBase64String(Encoding.ASCII.GetBytes(_certificate.ExportCertificatePem()));
        string yaml = $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster:
                server: {BaseUri.ToString().TrimEnd('/')}
                certificate-authority-data: {ca}
            contexts:
            - name: test
              context:
                cluster: test
                user: test
            current-context: test
            users:
            - name: test
              user:
                token: {Token}
            """;
        _kubeconfigPath ??= Path.Combine(Path.GetTempPath(), $"tripline-kubeconfig-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(_kubeconfigPath, yaml);
        return _kubeconfigPath;
    }

    /// <summary>Drops every open watch connection mid-stream, without a final event.</summary>
    public void DropWatches()
    {
        foreach (var watch in Store.OpenWatches()) watch.Drop.Cancel();
    }

    /// <summary>
    /// Forgets the history and ends every open watch with an ERROR event holding a 410 Gone Status, as the API server
    /// does when a watch falls behind etcd's compaction. Continue tokens expire too.
    /// </summary>
    public void ExpireWatches()
    {
        Store.Compact();
        _listSnapshots.Clear();
        foreach (var watch in Store.OpenWatches())
        {
            watch.Lines.Writer.TryWrite(ExpiredLine("resource version compacted"));
            watch.Lines.Writer.TryComplete();
        }
    }

    /// <summary>A restarted control plane with a new resourceVersion history; every connection drops.</summary>
    public void RestartWithNewHistory(long newRevision)
    {
        Store.ResetHistory(newRevision);
        _listSnapshots.Clear();
        DropWatches();
    }

    /// <summary>Stops listening: connections drop and new ones are refused until <see cref="ComeBackAsync"/>.</summary>
    public async Task GoUnreachableAsync()
    {
        var app = _app ?? throw new InvalidOperationException("not running");
        _app = null;
        DropWatches();
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Listens again on the same port.</summary>
    public Task ComeBackAsync() => ListenAsync();

    /// <summary>The next event of the resource is sent as an undecodable line in place of the event.</summary>
    public void SendMalformedEvent(ApiResource resource) => Store.CorruptNextEvent(resource);

    /// <summary>The next request for a further page answers 410 Expired, as when a continue token outlives etcd's compaction.</summary>
    public void FailNextContinue() => Interlocked.Exchange(ref _failNextContinue, 1);

    /// <summary>Open watches go quiet (no events, no bookmarks) until <see cref="ResumeWatches"/>.</summary>
    public void StallWatches()
    {
        lock (_stallGate)
        {
            if (_resume.Task.IsCompleted) _resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public void ResumeWatches()
    {
        lock (_stallGate) _resume.TrySetResult();
    }

    /// <summary>Lists of the resource wait until <see cref="ReleaseLists"/> (a resource whose first list is late).</summary>
    public void HoldLists(ApiResource resource) =>
        _listGates[resource.Name] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ReleaseLists(ApiResource resource)
    {
        if (_listGates.TryRemove(resource.Name, out var gate)) gate.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        ResumeWatches();
        foreach (var gate in _listGates.Values) gate.TrySetResult();
        if (_app is { } app)
        {
            _app = null;
            DropWatches();
            await app.StopAsync().ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
        if (_kubeconfigPath is not null) File.Delete(_kubeconfigPath);
    }

    private async Task ListenAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(_address, _port, listen => listen.UseHttps(_certificate));
            kestrel.AllowSynchronousIO = false;
        });
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        if (_port == 0)
        {
            var address = app.Urls.First();
            _port = new Uri(address).Port;
        }
        _app = app;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.Headers.Authorization.ToString() != $"Bearer {Token}")
        {
            await WriteStatusAsync(context, 401, "Unauthorized", "Unauthorized").ConfigureAwait(false);
            return;
        }
        if (HttpMethods.IsPost(request.Method) && Reviews.Handles(request.Path.Value))
        {
            await Reviews.HandleAsync(context).ConfigureAwait(false);
            return;
        }
        var (resource, version) = Route(request.Path.Value);
        if (resource is null || !HttpMethods.IsGet(request.Method))
        {
            await WriteNotFoundAsync(context).ConfigureAwait(false);
            return;
        }
        if (_unavailable.ContainsKey(resource.Name))
        {
            _unavailableAnswers.AddOrUpdate(resource.Name, 1, (_, n) => n + 1);
            await WriteStatusAsync(context, 503, "ServiceUnavailable", "the server is currently unable to handle the request").ConfigureAwait(false);
            return;
        }
        // Authorisation comes before the resource is looked up: without the rule, a CRD that is not installed is 403 too.
        if (_forbidden.ContainsKey(resource.Name))
        {
            _forbiddenAnswers.AddOrUpdate(resource.Name, 1, (_, n) => n + 1);
            string verb = (string?)request.Query["watch"] is "true" or "1" ? "watch" : "list";
            await WriteStatusAsync(context, 403, "Forbidden",
                $"{resource.Plural}.{resource.Group} is forbidden: User \\\"system:serviceaccount:tripline:tripline\\\" cannot {verb} resource \\\"{resource.Plural}\\\" in API group \\\"{resource.Group}\\\" at the cluster scope").ConfigureAwait(false);
            return;
        }
        if (version is not null && !ServedVersions(resource).Contains(version))
        {
            _notFound.AddOrUpdate(resource.Name, 1, (_, n) => n + 1);
            await WriteNotFoundAsync(context).ConfigureAwait(false);
            return;
        }
        if (ResponseDelay > TimeSpan.Zero) await Task.Delay(ResponseDelay, context.RequestAborted).ConfigureAwait(false);

        string? watch = request.Query["watch"];
        if (watch is "true" or "1") await WatchAsync(context, resource, version).ConfigureAwait(false);
        else await ListAsync(context, resource, version).ConfigureAwait(false);
    }

    /// <summary>
    /// The resource a path names, and for a custom resource the version asked for (served or not: that is decided
    /// after authorisation). Null for a path that names nothing the server knows.
    /// </summary>
    private static (ApiResource? Resource, string? Version) Route(string? path)
    {
        if (ApiResource.All.FirstOrDefault(r => !r.IsCustom && string.Equals(r.Path, path, StringComparison.Ordinal)) is { } builtIn) return (builtIn, null);
        // /apis/{group}/{version}/{plural}
        string[] parts = (path ?? "").Split('/');
        if (parts.Length != 5 || parts[0].Length != 0 || parts[1] != "apis") return (null, null);
        var custom = ApiResource.All.FirstOrDefault(r => r.IsCustom && r.Group == parts[2] && r.Plural == parts[4] && r.Versions.Contains(parts[3]));
        return custom is null ? (null, null) : (custom, parts[3]);
    }

    /// <summary>
    /// A custom resource's objects are stored once and served at the version asked for, as by a CRD without a
    /// conversion webhook: only apiVersion changes. The first apiVersion of the group in the JSON is the object's own.
    /// </summary>
    private static string ServedAs(string json, ApiResource resource, string? version)
    {
        if (version is null) return json;
        string key = $"\"apiVersion\":\"{resource.Group}/";
        int at = json.IndexOf(key, StringComparison.Ordinal);
        if (at < 0) return json;
        int start = at + key.Length - resource.Group.Length - 1;
        int end = json.IndexOf('"', start);
        return string.Concat(json.AsSpan(0, start), resource.ApiVersionAt(version), json.AsSpan(end));
    }

    private async Task ListAsync(HttpContext context, ApiResource resource, string? version)
    {
        _listRequests.AddOrUpdate(resource.Name, 1, (_, n) => n + 1);
        if (_listGates.TryGetValue(resource.Name, out var gate)) await gate.Task.WaitAsync(context.RequestAborted).ConfigureAwait(false);

        var query = context.Request.Query;
        int limit = int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out int l) && l > 0 ? l : int.MaxValue;
        string? continueToken = query["continue"];
        (string[] Items, long Revision) snapshot;
        int offset = 0;
        string snapshotId;
        if (!string.IsNullOrEmpty(continueToken))
        {
            // Pages after the first come from the same snapshot, as etcd serves them at the first page's revision.
            string[] parts = continueToken.Split(':');
            if (Interlocked.Exchange(ref _failNextContinue, 0) == 1 || parts.Length != 2 || !_listSnapshots.TryGetValue(parts[0], out snapshot) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out offset))
            {
                await WriteStatusAsync(context, 410, "Expired", "The provided continue parameter is too old to display a consistent list result.").ConfigureAwait(false);
                return;
            }
            snapshotId = parts[0];
        }
        else
        {
            snapshot = Store.ListSnapshot(resource);
            snapshotId = Guid.NewGuid().ToString("N");
        }

        int end = (int)Math.Min((long)offset + limit, snapshot.Items.Length);
        string? next = null;
        if (end < snapshot.Items.Length)
        {
            _listSnapshots[snapshotId] = snapshot;
            next = $"{snapshotId}:{end}";
        }
        else
        {
            _listSnapshots.TryRemove(snapshotId, out _);
        }

        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        var body = new StringBuilder(256 + (end - offset) * 1024);
        string apiVersion = version is null ? resource.ApiVersion : resource.ApiVersionAt(version);
        body.Append(CultureInfo.InvariantCulture, $"{{\"kind\":\"{resource.ListKind}\",\"apiVersion\":\"{apiVersion}\",\"metadata\":{{\"resourceVersion\":\"{snapshot.Revision}\"");
        if (next is not null) body.Append(CultureInfo.InvariantCulture, $",\"continue\":\"{next}\"");
        body.Append("},\"items\":[");
        for (int i = offset; i < end; i++)
        {
            if (i > offset) body.Append(',');
            body.Append(ServedAs(snapshot.Items[i], resource, version));
        }
        body.Append("]}");
        await context.Response.WriteAsync(body.ToString(), context.RequestAborted).ConfigureAwait(false);
    }

    private async Task WatchAsync(HttpContext context, ApiResource resource, string? version)
    {
        _watchRequests.AddOrUpdate(resource.Name, 1, (_, n) => n + 1);
        var query = context.Request.Query;
        bool bookmarks = query["allowWatchBookmarks"] == "true";
        TimeSpan timeout = int.TryParse(query["timeoutSeconds"], CultureInfo.InvariantCulture, out int seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : Timeout.InfiniteTimeSpan;

        var subscription = Store.Subscribe(resource, query["resourceVersion"], out string? expired, out bool tooLarge);
        if (tooLarge)
        {
            // What the watch cache answers once its wait for that version runs out: a 504 Status whose cause says why.
            context.Response.StatusCode = 504;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(
                $"{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"Timeout: {expired}\",\"reason\":\"Timeout\","
                + "\"details\":{\"causes\":[{\"reason\":\"ResourceVersionTooLarge\",\"message\":\"Too large resource version\"}],\"retryAfterSeconds\":1},\"code\":504}").ConfigureAwait(false);
            return;
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        if (subscription is null)
        {
            // The real server answers an old resourceVersion with 200 and a single ERROR event, then ends the stream.
            await WriteLineAsync(context, ExpiredLine(expired!)).ConfigureAwait(false);
            return;
        }

        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, subscription.Drop.Token);
        if (timeout != Timeout.InfiniteTimeSpan) ended.CancelAfter(timeout);
        try
        {
            await context.Response.StartAsync(ended.Token).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(ended.Token).ConfigureAwait(false);
            var reader = subscription.Lines.Reader;
            while (true)
            {
                Task resume;
                lock (_stallGate) resume = _resume.Task;
                await resume.WaitAsync(ended.Token).ConfigureAwait(false);

                using var tick = CancellationTokenSource.CreateLinkedTokenSource(ended.Token);
                tick.CancelAfter(BookmarkInterval);
                bool more;
                try
                {
                    more = await reader.WaitToReadAsync(tick.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ended.IsCancellationRequested)
                {
                    if (bookmarks && _resume.Task.IsCompleted && Store.BookmarkRevision(subscription) is { } revision)
                    {
                        await WriteLineAsync(context, BookmarkLine(resource, version, revision), ended.Token).ConfigureAwait(false);
                    }
                    continue;
                }
                if (!more) break;
                if (!_resume.Task.IsCompleted) continue;
                while (reader.TryRead(out string? line))
                {
                    await WriteLineAsync(context, ServedAs(line, resource, version), ended.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // A drop is abrupt: the connection goes without the chunked terminator. A timeout ends the stream cleanly.
            if (subscription.Drop.IsCancellationRequested) context.Abort();
        }
        catch (IOException)
        {
            // The client went away.
        }
        finally
        {
            Store.Unsubscribe(subscription);
        }
    }

    private static async Task WriteLineAsync(HttpContext context, string line, CancellationToken cancellationToken = default)
    {
        await context.Response.WriteAsync(line + "\n", cancellationToken).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string BookmarkLine(ApiResource resource, string? version, long revision) =>
        ObjectStore.EventLine("BOOKMARK", $"{{\"kind\":\"{resource.Kind}\",\"apiVersion\":\"{(version is null ? resource.ApiVersion : resource.ApiVersionAt(version))}\",\"metadata\":{{\"resourceVersion\":\"{revision}\"}}}}");

    private static string ExpiredLine(string message) =>
        ObjectStore.EventLine("ERROR", StatusJson(410, "Expired", message));

    private static string StatusJson(int code, string reason, string message) =>
        $"{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"{message}\",\"reason\":\"{reason}\",\"code\":{code}}}";

    /// <summary>What the real server answers for a path it does not serve, an unknown group or version among them.</summary>
    private static Task WriteNotFoundAsync(HttpContext context) =>
        WriteStatusAsync(context, 404, "NotFound", "the server could not find the requested resource");

    private static async Task WriteStatusAsync(HttpContext context, int code, string reason, string message)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(StatusJson(code, reason, message)).ConfigureAwait(false);
    }

    private static TaskCompletionSource CompletedSource()
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.SetResult();
        return source;
    }

    private static X509Certificate2 CreateCertificate(IPAddress address)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=tripline-test-apiserver", key, HashAlgorithmName.SHA256);
        // Its own CA, so that the kubeconfig's certificate-authority-data can name it.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(address);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        var now = DateTimeOffset.UtcNow;
        using var created = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(7));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }
}
