using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Tripline.Correlation.Kubernetes;

/// <summary>
/// Lists and watches one custom resource across the cluster, at the newest of its versions that the API server
/// serves. Which versions a CRD serves is the cluster's choice (an older install of SIG Network's policies has only
/// ClusterNetworkPolicy v1alpha2), so the first page of every list asks the versions in order and keeps the first that
/// is not 404; the pages after it and the watch that follows use that one. Items are read with the generated JSON
/// metadata of <typeparamref name="TList"/> and <see cref="Watcher{T}.WatchEvent"/> of <typeparamref name="TObject"/>.
/// </summary>
internal sealed class CustomResourceClient<TObject, TList>
    where TObject : class, IKubernetesObject<V1ObjectMeta>
    where TList : class, IItems<TObject>, IMetadata<V1ListMeta>
{
    private readonly ICustomObjectsOperations _api;
    private readonly ILogger _logger;
    private readonly string _name;
    private volatile string? _version;
    private string? _loggedVersion;

    /// <param name="name">How the log names the resource, as its informer does; <paramref name="resource"/> when null.</param>
    public CustomResourceClient(ICustomObjectsOperations api, string group, string resource, string kind, IReadOnlyList<string> versions, ILogger logger, string? name = null)
    {
        if (versions.Count == 0) throw new ArgumentException("at least one version is needed", nameof(versions));
        _api = api;
        Group = group;
        Resource = resource;
        _name = name ?? resource;
        Kind = kind;
        Versions = versions;
        _logger = logger;
    }

    public string Group { get; }
    public string Resource { get; }
    public string Kind { get; }

    /// <summary>Newest first: the order in which they are tried.</summary>
    public IReadOnlyList<string> Versions { get; }

    /// <summary>The version the last list found served; null before it, and after every version answered 404.</summary>
    public string? ServedVersion => _version;

    /// <summary>One page of the list; the first page of a list finds the version. Throws <see cref="ResourceNotInstalledException"/> when none is served.</summary>
    public async Task<ListPage<TObject>> ListAsync(string? continueToken, int limit, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrEmpty(continueToken) && _version is { } current)
        {
            return await ListAtAsync(current, continueToken, limit, cancellationToken).ConfigureAwait(false);
        }
        foreach (string version in Versions)
        {
            try
            {
                var page = await ListAtAsync(version, null, limit, cancellationToken).ConfigureAwait(false);
                UseVersion(version);
                return page;
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.NotFound)
            {
                // Not this version; perhaps an older one.
            }
        }
        _version = null;
        throw new ResourceNotInstalledException(Group, Resource, Versions);
    }

    /// <summary>Watches from <paramref name="resourceVersion"/> at the version the list found, with bookmarks.</summary>
    public IAsyncEnumerable<(WatchEventType Type, TObject Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, CancellationToken cancellationToken)
    {
        string version = _version ?? throw new ResourceNotInstalledException(Group, Resource, Versions);
        var response = _api.ListClusterCustomObjectWithHttpMessagesAsync<TList>(
            Group, version, Resource,
            allowWatchBookmarks: true,
            resourceVersion: resourceVersion,
            timeoutSeconds: timeoutSeconds,
            watch: true,
            cancellationToken: cancellationToken);
        // The client's generated typed watches (WatchListNamespaceAsync and the rest) are this same call; it marks
        // the helper obsolete in their favour, but its watch of custom objects yields untyped objects.
#pragma warning disable CS0618
        return response.WatchAsync<TObject, TList>(onError, cancellationToken);
#pragma warning restore CS0618
    }

    private async Task<ListPage<TObject>> ListAtAsync(string version, string? continueToken, int limit, CancellationToken cancellationToken)
    {
        using var response = await _api.ListClusterCustomObjectWithHttpMessagesAsync<TList>(
            Group, version, Resource,
            continueParameter: continueToken,
            limit: limit,
            cancellationToken: cancellationToken).ConfigureAwait(false);
        var list = response.Body;
        return new ListPage<TObject>(list?.Items ?? [], list?.Metadata?.ContinueProperty, list?.Metadata?.ResourceVersion);
    }

    private void UseVersion(string version)
    {
        _version = version;
        // One list at a time per resource (the informer's loop): no lock needed.
        if (string.Equals(_loggedVersion, version, StringComparison.Ordinal)) return;
        _loggedVersion = version;
        KubernetesSourceLog.ServedVersion(_logger, _name, Group, version);
    }
}

/// <summary>Every version of a custom resource answered 404: its CRD is not installed (or serves none of them).</summary>
internal sealed class ResourceNotInstalledException(string group, string resource, IReadOnlyList<string> versions)
    : Exception($"none of {string.Join(", ", versions.Select(v => $"{group}/{v}"))} serves {resource} (404): the CRD is not installed")
{
    public string Group { get; } = group;
    public string Resource { get; } = resource;
}
