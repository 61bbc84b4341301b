using System.Text;
using System.Text.RegularExpressions;
using k8s.Models;
using Tripline.Correlation.Cluster;
using YamlDotNet.RepresentationModel;

namespace Tripline.Correlation.Manifests;

/// <summary>A document that could not be loaded: the file, where in it, which object, and why.</summary>
public sealed record ManifestError(string File, int Line, string? Object, string Message)
{
    public override string ToString() => Object is null ? $"{File}:{Line}: {Message}" : $"{File}:{Line}: {Object}: {Message}";
}

public sealed record ManifestLoadResult(ClusterSnapshot Snapshot, IReadOnlyList<ManifestError> Errors, IReadOnlyDictionary<string, int> IgnoredKinds, int FilesRead);

/// <summary>
/// Reads cluster state from files or directories of multi-document YAML or JSON, as <c>kubectl get -o yaml</c>
/// writes them (a <c>kind: List</c> with <c>items</c> included), with KubernetesClient's typed models. A bad
/// document costs only itself: its error names the file, the line and the object, and the rest still loads.
/// </summary>
public static partial class ManifestLoader
{
    private static readonly string[] Extensions = [".yaml", ".yml", ".json"];

    [GeneratedRegex(@"^---", RegexOptions.Multiline)]
    private static partial Regex DocumentSeparator();

    /// <summary>Expands paths into the manifest files they name; a missing path is an error.</summary>
    public static IReadOnlyList<string> ExpandPaths(IEnumerable<string> paths, List<ManifestError> errors)
    {
        var files = new List<string>();
        foreach (string path in paths)
        {
            if (File.Exists(path)) files.Add(path);
            else if (Directory.Exists(path))
            {
                files.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal));
            }
            else errors.Add(new ManifestError(path, 0, null, "no such file or directory"));
        }
        return files;
    }

    public static ManifestLoadResult Load(IEnumerable<string> paths, long version = 1)
    {
        var errors = new List<ManifestError>();
        var files = ExpandPaths(paths, errors);
        var builder = new Builder();
        foreach (string file in files)
        {
            string text;
            try
            {
                text = File.ReadAllText(file, Encoding.UTF8);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add(new ManifestError(file, 0, null, e.Message));
                continue;
            }
            LoadText(text, file, builder, errors);
        }
        return new ManifestLoadResult(builder.Build(version), errors, builder.Ignored, files.Count);
    }

    /// <summary>Loads manifests from text (for tests and standard input).</summary>
    public static ManifestLoadResult LoadFromText(string text, string name = "<text>")
    {
        var errors = new List<ManifestError>();
        var builder = new Builder();
        LoadText(text, name, builder, errors);
        return new ManifestLoadResult(builder.Build(1), errors, builder.Ignored, 1);
    }

    private static void LoadText(string text, string file, Builder builder, List<ManifestError> errors)
    {
        // Split at document markers first, so that a syntax error costs one document rather than the file.
        int start = 0;
        var matches = DocumentSeparator().Matches(text);
        var chunks = new List<(int Offset, string Text)>();
        foreach (Match match in matches)
        {
            chunks.Add((start, text[start..match.Index]));
            int lineEnd = text.IndexOf('\n', match.Index);
            // "--- " may carry content on the same line; keep it by cutting only the marker.
            start = match.Index + 3;
            if (lineEnd < 0) start = text.Length;
        }
        chunks.Add((start, text[start..]));

        foreach (var (offset, chunk) in chunks)
        {
            if (string.IsNullOrWhiteSpace(StripComments(chunk))) continue;
            int line = 1 + CountLines(text, offset);
            YamlStream stream = new();
            try
            {
                stream.Load(new StringReader(chunk));
            }
            catch (YamlDotNet.Core.YamlException e)
            {
                errors.Add(new ManifestError(file, line + (int)Math.Max(0, e.Start.Line - 1), null, "not valid YAML or JSON: " + e.Message));
                continue;
            }
            foreach (var document in stream.Documents)
            {
                LoadNode(document.RootNode, file, line + (int)Math.Max(0, document.RootNode.Start.Line - 1), builder, errors, depth: 0);
            }
        }
    }

    private static string StripComments(string chunk) => string.Join('\n', chunk.Split('\n').Where(l => !l.TrimStart().StartsWith('#')));

    private static int CountLines(string text, int upTo)
    {
        int count = 0;
        for (int i = 0; i < upTo && i < text.Length; i++) if (text[i] == '\n') count++;
        return count;
    }

    private static void LoadNode(YamlNode node, string file, int line, Builder builder, List<ManifestError> errors, int depth)
    {
        if (YamlJson.IsNull(node)) return;
        if (node is not YamlMappingNode map)
        {
            errors.Add(new ManifestError(file, line, null, "a manifest document must be a mapping with apiVersion and kind"));
            return;
        }
        string? kind = Scalar(map, "kind");
        string? apiVersion = Scalar(map, "apiVersion");
        string? name = map.Children.TryGetValue(new YamlScalarNode("metadata"), out var metaNode) && metaNode is YamlMappingNode meta ? Scalar(meta, "name") : null;
        string? ns = metaNode is YamlMappingNode meta2 ? Scalar(meta2, "namespace") : null;
        string objectName = $"{kind ?? "<no kind>"} {(ns is null ? "" : ns + "/")}{name ?? "<no name>"}";

        if (kind is null || apiVersion is null)
        {
            errors.Add(new ManifestError(file, line, name is null ? null : objectName, "apiVersion and kind are required"));
            return;
        }

        if (kind.EndsWith("List", StringComparison.Ordinal) && map.Children.TryGetValue(new YamlScalarNode("items"), out var items))
        {
            if (depth > 2) { errors.Add(new ManifestError(file, line, objectName, "lists nested too deeply")); return; }
            if (items is YamlSequenceNode sequence)
            {
                foreach (var item in sequence) LoadNode(item, file, line + (int)Math.Max(0, item.Start.Line - node.Start.Line), builder, errors, depth + 1);
            }
            else if (!YamlJson.IsNull(items))
            {
                errors.Add(new ManifestError(file, line, objectName, "items must be a list"));
            }
            return;
        }

        try
        {
            switch ((apiVersion, kind))
            {
                case ("v1", "Namespace"):
                    builder.Add(ClusterObjectConverter.ToNamespace(Deserialize<V1Namespace>(map)));
                    break;
                case ("v1", "Pod"):
                    builder.Add(ClusterObjectConverter.ToPod(Deserialize<V1Pod>(map)));
                    break;
                case ("v1", "Service"):
                    builder.Add(ClusterObjectConverter.ToService(Deserialize<V1Service>(map)));
                    break;
                case ("v1", "Node"):
                    builder.Add(ClusterObjectConverter.ToNode(Deserialize<V1Node>(map)));
                    break;
                case ("discovery.k8s.io/v1", "EndpointSlice"):
                    builder.Add(ClusterObjectConverter.ToEndpointSlice(Deserialize<V1EndpointSlice>(map)));
                    break;
                case ("networking.k8s.io/v1", "NetworkPolicy"):
                    {
                        var policy = Deserialize<V1NetworkPolicy>(map);
                        if (string.IsNullOrEmpty(policy.Metadata?.Name)) throw new InvalidDataException("metadata.name is missing");
                        policy.Metadata.NamespaceProperty ??= "default";
                        var problems = Policy.PolicyValidator.Validate(policy);
                        if (problems.Count > 0)
                        {
                            foreach (string problem in problems) errors.Add(new ManifestError(file, line, objectName, problem));
                            return;
                        }
                        builder.Add(policy);
                        break;
                    }
                default:
                    builder.Ignore($"{apiVersion}/{kind}");
                    break;
            }
        }
        catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException or YamlDotNet.Core.YamlException or FormatException or ArgumentException or InvalidOperationException or OverflowException)
        {
            errors.Add(new ManifestError(file, line, objectName, Describe(e)));
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

    /// <summary>An identifying field (kind, apiVersion, name, namespace): missing, null and empty alike are absent.</summary>
    private static string? Scalar(YamlMappingNode map, string key) => YamlJson.Text(map, key) is { Length: > 0 } text ? text : null;

    /// <summary>
    /// Reads a document into KubernetesClient's typed model: the YAML tree is written as JSON and read with the metadata
    /// generated at build time (<see cref="ManifestMetadata"/>: KubernetesJson's options, none of its start-up or
    /// reflection, and only the properties the agent reads).
    /// </summary>
    private static T Deserialize<T>(YamlMappingNode map) =>
        System.Text.Json.JsonSerializer.Deserialize(YamlJson.ToJson(map).Span, ManifestMetadata.For<T>())!;

    private sealed class Builder
    {
        private readonly Dictionary<string, NamespaceInfo> _namespaces = new(StringComparer.Ordinal);
        private readonly Dictionary<string, PodInfo> _pods = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ServiceInfo> _services = new(StringComparer.Ordinal);
        private readonly Dictionary<string, EndpointSliceInfo> _slices = new(StringComparer.Ordinal);
        private readonly Dictionary<string, NodeInfo> _nodes = new(StringComparer.Ordinal);
        private readonly Dictionary<string, V1NetworkPolicy> _policies = new(StringComparer.Ordinal);

        public Dictionary<string, int> Ignored { get; } = new(StringComparer.Ordinal);

        // The same object twice (a file and a List that both hold it): the later one wins, as kubectl apply would.
        public void Add(NamespaceInfo ns) => _namespaces[ns.Name] = ns;
        public void Add(PodInfo pod) => _pods[pod.Key] = pod;
        public void Add(ServiceInfo service) => _services[service.Key] = service;
        public void Add(EndpointSliceInfo slice) => _slices[$"{slice.Namespace}/{slice.Name}"] = slice;
        public void Add(NodeInfo node) => _nodes[node.Name] = node;
        public void Add(V1NetworkPolicy policy) => _policies[$"{policy.Metadata.NamespaceProperty}/{policy.Metadata.Name}"] = policy;

        public void Ignore(string kind) => Ignored[kind] = Ignored.GetValueOrDefault(kind) + 1;

        public ClusterSnapshot Build(long version)
        {
            // Namespaces that objects live in but no manifest declares still exist for selectors.
            foreach (string name in _pods.Values.Select(p => p.Namespace).Concat(_policies.Values.Select(p => p.Metadata.NamespaceProperty)).Distinct())
            {
                if (!_namespaces.ContainsKey(name))
                {
                    _namespaces[name] = ClusterObjectConverter.ToNamespace(new V1Namespace { Metadata = new V1ObjectMeta { Name = name } });
                }
            }
            return new ClusterSnapshot(version, _namespaces.Values, _pods.Values, _services.Values, _slices.Values, _nodes.Values, _policies.Values);
        }
    }
}
