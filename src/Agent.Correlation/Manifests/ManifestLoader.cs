using System.Text;
using System.Text.Json;
using k8s.Models;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Manifests;

/// <summary>A document that could not be loaded: the file, where in it, which object, and why.</summary>
public sealed record ManifestError(string File, int Line, string? Object, string Message)
{
    public override string ToString() => Object is null ? $"{File}:{Line}: {Message}" : $"{File}:{Line}: {Object}: {Message}";
}

public sealed record ManifestLoadResult(ClusterSnapshot Snapshot, IReadOnlyList<ManifestError> Errors, IReadOnlyDictionary<string, int> IgnoredKinds, int FilesRead);

/// <summary>
/// Reads cluster state from files or directories of multi-document YAML or JSON, as <c>kubectl get -o yaml</c>
/// writes them (a <c>kind: List</c> with <c>items</c> included), gzipped or not, with KubernetesClient's typed models.
/// Files are read as streams, one object at a time (<see cref="YamlManifestReader"/>, <see cref="JsonManifestReader"/>):
/// time grows with the size of the input and memory with the cluster model, never with the file. A bad document costs
/// only itself: its error names the file, the line and the object, and the rest still loads.
/// </summary>
public static partial class ManifestLoader
{
    private static readonly string[] Extensions = [".yaml", ".yml", ".json"];

    /// <summary>Whether a file name is a manifest's: .yaml, .yml or .json, gzipped or not.</summary>
    public static bool IsManifestFile(string path)
    {
        string name = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        return Extensions.Contains(Path.GetExtension(name), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Expands paths into the manifest files they name; a missing path is an error.</summary>
    public static IReadOnlyList<string> ExpandPaths(IEnumerable<string> paths, List<ManifestError> errors)
    {
        var files = new List<string>();
        foreach (string path in paths)
        {
            if (File.Exists(path)) files.Add(path);
            else if (Directory.Exists(path))
            {
                files.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Where(IsManifestFile).Order(StringComparer.Ordinal));
            }
            else errors.Add(new ManifestError(path, 0, null, "no such file or directory"));
        }
        return files;
    }

    /// <param name="declaredOnly">
    /// Keep only what the files declare: no Namespace is made up for objects that live in an undeclared one (a change
    /// applied to a cluster must not reset the labels of a namespace it merely mentions).
    /// </param>
    public static ManifestLoadResult Load(IEnumerable<string> paths, long version = 1, bool declaredOnly = false)
    {
        var errors = new List<ManifestError>();
        var files = ExpandPaths(paths, errors);
        var builder = new Builder();
        foreach (string file in files)
        {
            try
            {
                using var stream = OpenFile(file);
                bool json = Path.GetExtension(file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? file[..^3] : file).Equals(".json", StringComparison.OrdinalIgnoreCase);
                if (json)
                {
                    var collector = new Collector(file);
                    JsonManifestReader.Read(stream, new StreamingSink(collector, builder, errors));
                }
                else
                {
                    using var text = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
                    LoadYaml(text, file, builder, errors);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                errors.Add(new ManifestError(file, 0, null, e.Message));
            }
        }
        return new ManifestLoadResult(builder.Build(version, declaredOnly), errors, builder.Ignored, files.Count);
    }

    private static Stream OpenFile(string file)
    {
        var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress) : stream;
    }

    /// <summary>Loads manifests from text (for tests and standard input).</summary>
    public static ManifestLoadResult LoadFromText(string text, string name = "<text>")
    {
        var errors = new List<ManifestError>();
        var builder = new Builder();
        LoadYaml(new StringReader(text), name, builder, errors);
        return new ManifestLoadResult(builder.Build(1), errors, builder.Ignored, 1);
    }

    /// <summary>YAML, read on one thread as a stream of events: every object applied as it is read (a List's items once it is known to be one).</summary>
    private static void LoadYaml(TextReader text, string file, Builder builder, List<ManifestError> errors) =>
        YamlManifestReader.Read(text, new StreamingSink(new Collector(file), builder, errors));

    /// <summary>An ignored object's kind, kept in order with the models and errors of a piece.</summary>
    private sealed record IgnoredKind(string Kind);

    /// <summary>
    /// Collects what a reader hands over, converted at once: models, errors and ignored kinds in the file's order. Items
    /// of a List are held (as models, never as text) until its document ends and says it is a List; a document that only had an "items" field forgets them.
    /// </summary>
    private sealed class Collector(string file) : IManifestObjectSink
    {
        private readonly List<object> _listItems = [];

        public List<object> Entries { get; } = [];

        /// <summary>Set by a document's end: whether it was a List.</summary>
        public bool? IsList { get; private set; }

        private int _objects;

        public void Object(ReadOnlySpan<byte> json, int line, bool inList)
        {
            LoadObject(json, file, line, inList ? _listItems : Entries);
            // A large load makes garbage far faster than the collector's own pace would collect it (its first
            // generation's budget follows the size of the CPU's cache: a hundred megabytes on a large server), so a
            // 50,000-pod load would peak at several times the model it builds. A young-generation collection every few
            // thousand objects keeps the peak near the model; each costs about a millisecond.
            if (++_objects % CollectEvery == 0) GC.Collect(1, GCCollectionMode.Forced, blocking: true);
        }

        private const int CollectEvery = 4096;

        public void Error(int line, string message) => Entries.Add(new ManifestError(file, line, null, message));

        public void EndDocument(bool isList)
        {
            IsList = isList;
            if (isList) Entries.AddRange(_listItems);
            _listItems.Clear();
        }

        public void ApplyTo(Builder builder, List<ManifestError> errors)
        {
            foreach (object entry in Entries) Apply(entry, builder, errors);
        }

        public static void Apply(object entry, Builder builder, List<ManifestError> errors)
        {
            switch (entry)
            {
                case ManifestError error: errors.Add(error); break;
                case IgnoredKind ignored: builder.Ignore(ignored.Kind); break;
                default: builder.Add(entry); break;
            }
        }
    }

    /// <summary>Applies what the collector converted as soon as it has it, so nothing but a List's held items waits.</summary>
    private sealed class StreamingSink(Collector collector, Builder builder, List<ManifestError> errors) : IManifestObjectSink
    {
        public void Object(ReadOnlySpan<byte> json, int line, bool inList)
        {
            collector.Object(json, line, inList);
            Drain();
        }

        public void Error(int line, string message)
        {
            collector.Error(line, message);
            Drain();
        }

        public void EndDocument(bool isList)
        {
            collector.EndDocument(isList);
            Drain();
        }

        private void Drain()
        {
            foreach (object entry in collector.Entries) Collector.Apply(entry, builder, errors);
            collector.Entries.Clear();
        }
    }

    /// <summary>What identifies an object in an error: kind, apiVersion, namespace and name, read from its JSON.</summary>
    private static (string? ApiVersion, string? Kind, string? Namespace, string? Name) Identify(ReadOnlySpan<byte> json)
    {
        string? apiVersion = null, kind = null, ns = null, name = null;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return default;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("apiVersion"u8)) { reader.Read(); apiVersion = Text(ref reader); }
                else if (reader.ValueTextEquals("kind"u8)) { reader.Read(); kind = Text(ref reader); }
                else if (reader.ValueTextEquals("metadata"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject) { reader.Skip(); continue; }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        if (reader.ValueTextEquals("name"u8)) { reader.Read(); name = Text(ref reader); }
                        else if (reader.ValueTextEquals("namespace"u8)) { reader.Read(); ns = Text(ref reader); }
                        else { reader.Read(); reader.Skip(); }
                    }
                }
                else { reader.Read(); reader.Skip(); }
            }
        }
        catch (JsonException)
        {
            // What was found so far names the object; the typed read reports what is wrong.
        }
        return (apiVersion, kind, ns, name);

        static string? Text(ref Utf8JsonReader reader) => reader.TokenType switch
        {
            JsonTokenType.String => reader.GetString() is { Length: > 0 } text ? text : null,
            JsonTokenType.Number => Encoding.UTF8.GetString(reader.ValueSpan),
            _ => SkipAndNull(ref reader),
        };

        static string? SkipAndNull(ref Utf8JsonReader reader)
        {
            reader.Skip();
            return null;
        }
    }

    private static void LoadObject(ReadOnlySpan<byte> json, string file, int line, List<object> into)
    {
        Action<object> add = into.Add;
        var (apiVersion, kind, ns, name) = Identify(json);
        string objectName = $"{kind ?? "<no kind>"} {(ns is null ? "" : ns + "/")}{name ?? "<no name>"}";
        if (kind is null || apiVersion is null)
        {
            into.Add(new ManifestError(file, line, name is null ? null : objectName, "apiVersion and kind are required"));
            return;
        }
        try
        {
            switch ((apiVersion, kind))
            {
                case ("v1", "Namespace"):
                    add(ClusterObjectConverter.ToNamespace(Deserialize<V1Namespace>(json)));
                    break;
                case ("v1", "ServiceAccount"):
                    add(ClusterObjectConverter.ToServiceAccount(Deserialize<V1ServiceAccount>(json)));
                    break;
                case ("v1", "Pod"):
                    add(ClusterObjectConverter.ToPod(Deserialize<V1Pod>(json)));
                    break;
                case ("v1", "Service"):
                    add(ClusterObjectConverter.ToService(Deserialize<V1Service>(json)));
                    break;
                case ("v1", "Node"):
                    add(ClusterObjectConverter.ToNode(Deserialize<V1Node>(json)));
                    break;
                case ("discovery.k8s.io/v1", "EndpointSlice"):
                    add(ClusterObjectConverter.ToEndpointSlice(Deserialize<V1EndpointSlice>(json)));
                    break;
                case ("networking.k8s.io/v1", "NetworkPolicy"):
                    {
                        var policy = Deserialize<V1NetworkPolicy>(json);
                        if (string.IsNullOrEmpty(policy.Metadata?.Name)) throw new InvalidDataException("metadata.name is missing");
                        policy.Metadata.NamespaceProperty ??= "default";
                        var problems = Policy.PolicyValidator.Validate(policy);
                        if (problems.Count > 0)
                        {
                            foreach (string problem in problems) into.Add(new ManifestError(file, line, objectName, problem));
                            return;
                        }
                        add(policy);
                        break;
                    }
                case var (version, k) when AdminPolicyObject.IsKnown(version, k):
                    {
                        var policy = Deserialize<AdminPolicyObject>(json);
                        if (string.IsNullOrEmpty(policy.Metadata?.Name)) throw new InvalidDataException("metadata.name is missing");
                        policy.Metadata.NamespaceProperty = null;
                        var problems = new List<string>();
                        Policy.Admin.AdminPolicyCompiler.Compile(policy, problems);
                        if (problems.Count > 0)
                        {
                            foreach (string problem in problems) into.Add(new ManifestError(file, line, objectName, problem));
                            return;
                        }
                        add(policy);
                        break;
                    }
                case var (version, k) when CalicoObject.IsKnown(version, k):
                    {
                        var calico = Deserialize<CalicoObject>(json).Normalize();
                        var problems = new List<string>();
                        Policy.Calico.CalicoPolicyCompiler.Validate(calico, problems);
                        if (problems.Count > 0)
                        {
                            foreach (string problem in problems) into.Add(new ManifestError(file, line, objectName, problem));
                            return;
                        }
                        add(calico);
                        break;
                    }
                case var (version, k) when PeerAuthenticationObject.IsKnown(version, k):
                    {
                        var peerAuthentication = Deserialize<PeerAuthenticationObject>(json);
                        if (peerAuthentication.Metadata is { } meta && string.IsNullOrEmpty(meta.NamespaceProperty)) meta.NamespaceProperty = "default";
                        var problems = peerAuthentication.Validate();
                        if (problems.Count > 0)
                        {
                            foreach (string problem in problems) into.Add(new ManifestError(file, line, objectName, problem));
                            return;
                        }
                        add(peerAuthentication);
                        break;
                    }
                default:
                    into.Add(new IgnoredKind($"{apiVersion}/{kind}"));
                    break;
            }
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or FormatException or ArgumentException or InvalidOperationException or OverflowException)
        {
            into.Add(new ManifestError(file, line, objectName, Describe(e)));
        }
    }

    private static string Describe(Exception e)
    {
        var messages = new List<string>();
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (!string.IsNullOrWhiteSpace(current.Message) && !messages.Contains(current.Message)) messages.Add(current.Message);
        }
        return string.Join(": ", messages);
    }

    /// <summary>
    /// Reads an object's JSON into KubernetesClient's typed model with the metadata generated at build time
    /// (<see cref="ManifestMetadata"/>: KubernetesJson's options, none of its start-up or reflection, and only the
    /// properties the agent reads).
    /// </summary>
    private static T Deserialize<T>(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, ManifestMetadata.For<T>())!;

    private sealed class Builder
    {
        private readonly Dictionary<string, NamespaceInfo> _namespaces = new(StringComparer.Ordinal);
        private readonly Dictionary<string, PodInfo> _pods = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ServiceInfo> _services = new(StringComparer.Ordinal);
        private readonly Dictionary<string, EndpointSliceInfo> _slices = new(StringComparer.Ordinal);
        private readonly Dictionary<string, NodeInfo> _nodes = new(StringComparer.Ordinal);
        private readonly Dictionary<string, V1NetworkPolicy> _policies = new(StringComparer.Ordinal);
        private readonly Dictionary<string, AdminPolicyObject> _adminPolicies = new(StringComparer.Ordinal);
        private readonly Dictionary<string, CalicoObject> _calico = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ServiceAccountInfo> _serviceAccounts = new(StringComparer.Ordinal);
        private readonly Dictionary<string, PeerAuthenticationObject> _peerAuthentications = new(StringComparer.Ordinal);

        private readonly Kubernetes.PodCompactor _compactor = new();

        public Dictionary<string, int> Ignored { get; } = new(StringComparer.Ordinal);

        // The same object twice (a file and a List that both hold it): the later one wins, as kubectl apply would.
        public void Add(object model)
        {
            switch (model)
            {
                case NamespaceInfo ns: _namespaces[ns.Name] = ns; break;
                case PodInfo pod: _pods[pod.Key] = _compactor.Compact(pod); break;
                case ServiceInfo service: _services[service.Key] = service; break;
                case EndpointSliceInfo slice: _slices[$"{slice.Namespace}/{slice.Name}"] = slice; break;
                case NodeInfo node: _nodes[node.Name] = node; break;
                case V1NetworkPolicy policy: _policies[$"{policy.Metadata.NamespaceProperty}/{policy.Metadata.Name}"] = policy; break;
                case AdminPolicyObject policy: _adminPolicies[policy.Key] = policy; break;
                case CalicoObject calico: _calico[calico.Key] = calico; break;
                case ServiceAccountInfo account: _serviceAccounts[account.Key] = account; break;
                case PeerAuthenticationObject peerAuthentication: _peerAuthentications[peerAuthentication.Key] = peerAuthentication; break;
                default: throw new ArgumentException($"not a cluster object: {model.GetType().Name}", nameof(model));
            }
        }

        public void Ignore(string kind) => Ignored[kind] = Ignored.GetValueOrDefault(kind) + 1;

        public ClusterSnapshot Build(long version, bool declaredOnly = false)
        {
            // Namespaces that objects live in but no manifest declares still exist for selectors.
            foreach (string name in declaredOnly ? [] : _pods.Values.Select(p => p.Namespace).Concat(_policies.Values.Select(p => p.Metadata.NamespaceProperty)).Distinct())
            {
                if (!_namespaces.ContainsKey(name))
                {
                    _namespaces[name] = ClusterObjectConverter.ToNamespace(new V1Namespace { Metadata = new V1ObjectMeta { Name = name } });
                }
            }
            return new ClusterSnapshot(version, _namespaces.Values, _pods.Values, _services.Values, _slices.Values, _nodes.Values, _policies.Values, _adminPolicies.Values, _calico.Values, _serviceAccounts.Values, _peerAuthentications.Values);
        }
    }
}
