using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using k8s.Models;

namespace Tripline.Tests.Support;

/// <summary>
/// A large, deterministic cluster: namespaces, nodes, pods owned by Deployments (three labels, one named container
/// port each) and a mix of NetworkPolicies (default denies, pod and namespace selectors, named ports, ipBlocks with
/// exceptions, egress to DNS). Written in every form the manifest loader reads (one document per object, one
/// <c>kind: List</c> as <c>kubectl get -o yaml</c> writes it, JSON as <c>kubectl get -o json</c> writes it, gzipped),
/// and as typed objects for the in-process API server, so that each form can be checked against the others and timed
/// against the API path. Shared by the tests and the benchmarks.
/// </summary>
public sealed class GeneratedCluster(int pods, int policies, int namespaces = 500, int nodes = 100)
{
    public int Pods { get; } = pods;
    public int Policies { get; } = policies;
    public int Namespaces { get; } = namespaces;
    public int Nodes { get; } = nodes;

    public static string PodIp(int i) => $"10.{64 + i / 65_536}.{i / 256 % 256}.{i % 256}";

    private string App(int i) => $"app-{i % Math.Max(1, Pods / 25)}";

    public IEnumerable<V1Namespace> NamespaceObjects() => Enumerable.Range(0, Namespaces).Select(n => new V1Namespace
    {
        ApiVersion = "v1",
        Kind = "Namespace",
        Metadata = new V1ObjectMeta
        {
            Name = $"ns-{n}",
            Uid = $"00000000-0000-4000-8000-{n:x12}",
            Labels = new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = $"ns-{n}", ["team"] = $"team-{n % 20}" },
        },
    });

    public IEnumerable<V1Node> NodeObjects() => Enumerable.Range(0, Nodes).Select(n => new V1Node
    {
        ApiVersion = "v1",
        Kind = "Node",
        Metadata = new V1ObjectMeta { Name = $"node-{n}", Uid = $"10000000-0000-4000-8000-{n:x12}", Labels = new Dictionary<string, string> { ["kubernetes.io/hostname"] = $"node-{n}" } },
        Status = new V1NodeStatus { Addresses = [new V1NodeAddress { Type = "InternalIP", Address = $"192.168.{n / 256}.{n % 256 + 1}" }] },
    });

    public IEnumerable<V1Pod> PodObjects() => Enumerable.Range(0, Pods).Select(i =>
    {
        string app = App(i);
        return new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta
            {
                Name = $"{app}-7d9f8c6b5-{i:x6}",
                NamespaceProperty = $"ns-{i % Namespaces}",
                Uid = $"20000000-0000-4000-8000-{i:x12}",
                CreationTimestamp = new DateTime(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc),
                Labels = new Dictionary<string, string> { ["app"] = app, ["pod-template-hash"] = "7d9f8c6b5", ["tier"] = (i % 3).ToString(CultureInfo.InvariantCulture) },
                OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = $"{app}-7d9f8c6b5", Uid = $"30000000-0000-4000-8000-{i % 4096:x12}", Controller = true }],
            },
            Spec = new V1PodSpec
            {
                NodeName = $"node-{i % Nodes}",
                Containers = [new V1Container { Name = "main", Image = "registry.example/app:1.0", Ports = [new V1ContainerPort { ContainerPort = 8080 + i % 3, Name = "http", Protocol = "TCP" }] }],
            },
            Status = new V1PodStatus { Phase = "Running", PodIP = PodIp(i), PodIPs = [new V1PodIP { Ip = PodIp(i) }] },
        };
    });

    public IEnumerable<V1NetworkPolicy> PolicyObjects() => Enumerable.Range(0, Policies).Select(i =>
    {
        string ns = $"ns-{i % Namespaces}";
        var spec = (i % 4) switch
        {
            0 => new V1NetworkPolicySpec { PodSelector = new V1LabelSelector(), PolicyTypes = ["Ingress"] },
            1 => new V1NetworkPolicySpec
            {
                PodSelector = Labels("app", App(i * 7)),
                PolicyTypes = ["Ingress"],
                Ingress = [new V1NetworkPolicyIngressRule { FromProperty = [new V1NetworkPolicyPeer { PodSelector = Labels("app", App(i * 7 + 1)) }], Ports = [new V1NetworkPolicyPort { Port = "8080", Protocol = "TCP" }] }],
            },
            2 => new V1NetworkPolicySpec
            {
                PodSelector = Labels("tier", (i % 3).ToString(CultureInfo.InvariantCulture)),
                PolicyTypes = ["Ingress"],
                Ingress = [new V1NetworkPolicyIngressRule
                {
                    FromProperty = [new V1NetworkPolicyPeer { NamespaceSelector = Labels("team", $"team-{i % 20}"), PodSelector = new V1LabelSelector { MatchExpressions = [new V1LabelSelectorRequirement { Key = "tier", OperatorProperty = "In", Values = ["0", "1"] }] } }],
                    Ports = [new V1NetworkPolicyPort { Port = "http" }],
                }],
            },
            _ => new V1NetworkPolicySpec
            {
                PodSelector = Labels("app", App(i * 3)),
                PolicyTypes = ["Egress"],
                Egress =
                [
                    new V1NetworkPolicyEgressRule { To = [new V1NetworkPolicyPeer { IpBlock = new V1IPBlock { Cidr = "10.64.0.0/10", Except = ["10.64.128.0/17"] } }] },
                    new V1NetworkPolicyEgressRule { To = [new V1NetworkPolicyPeer { NamespaceSelector = Labels("kubernetes.io/metadata.name", "ns-0") }], Ports = [new V1NetworkPolicyPort { Port = "53", Protocol = "UDP" }] },
                ],
            },
        };
        return new V1NetworkPolicy
        {
            ApiVersion = "networking.k8s.io/v1",
            Kind = "NetworkPolicy",
            Metadata = new V1ObjectMeta { Name = $"policy-{i}", NamespaceProperty = ns, Uid = $"40000000-0000-4000-8000-{i:x12}" },
            Spec = spec,
        };
    });

    private static V1LabelSelector Labels(string key, string value) => new() { MatchLabels = new Dictionary<string, string> { [key] = value } };

    public IEnumerable<object> AllObjects() =>
        NamespaceObjects().Cast<object>().Concat(NodeObjects()).Concat(PodObjects()).Concat(PolicyObjects());

    /// <summary>Writes the cluster in one form: "documents", "list", "json", or either of the last two gzipped (".gz").</summary>
    public string Write(string directory, string form)
    {
        bool gzip = form.EndsWith(".gz", StringComparison.Ordinal);
        string plain = gzip ? form[..^3] : form;
        string path = Path.Combine(directory, $"cluster-{plain}{(plain == "json" ? ".json" : ".yaml")}{(gzip ? ".gz" : "")}");
        using var file = File.Create(path);
        using Stream stream = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        if (plain == "json") WriteJsonList(stream);
        else
        {
            using var text = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16);
            if (plain == "list") WriteYamlList(text);
            else WriteYamlDocuments(text);
        }
        return path;
    }

    /// <summary>Every object as a document of its own, separated by <c>---</c>.</summary>
    public void WriteYamlDocuments(TextWriter text)
    {
        foreach (object o in AllObjects())
        {
            text.Write("---\n");
            Yaml.Object(text, Json(o), indent: 0);
        }
    }

    /// <summary>One List, as <c>kubectl get -o yaml</c> writes it: apiVersion, items, kind, metadata.</summary>
    public void WriteYamlList(TextWriter text)
    {
        text.Write("apiVersion: v1\nitems:\n");
        foreach (object o in AllObjects())
        {
            text.Write("- ");
            Yaml.Object(text, Json(o), indent: 2, firstLineIndented: false);
        }
        text.Write("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    }

    public void WriteJsonList(Stream stream)
    {
        using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        writer.WriteStartObject();
        writer.WriteString("apiVersion", "v1");
        writer.WriteStartArray("items");
        foreach (object o in AllObjects()) Json(o).WriteTo(writer);
        writer.WriteEndArray();
        writer.WriteString("kind", "List");
        writer.WriteStartObject("metadata");
        writer.WriteString("resourceVersion", "");
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static JsonElement Json(object o) => JsonDocument.Parse(k8s.KubernetesJson.Serialize(o)).RootElement;

    /// <summary>JSON written as block YAML the way kubectl writes it (keys sorted, strings quoted when YAML would misread them).</summary>
    private static class Yaml
    {
        public static void Object(TextWriter text, JsonElement o, int indent, bool firstLineIndented = true)
        {
            bool first = true;
            foreach (var property in o.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                if (property.Value.ValueKind == JsonValueKind.Null) continue;
                if (!first || firstLineIndented) text.Write(new string(' ', indent));
                first = false;
                text.Write(Key(property.Name));
                text.Write(':');
                Value(text, property.Value, indent);
            }
            if (first) text.Write("{}\n");
        }

        private static void Value(TextWriter text, JsonElement value, int indent)
        {
            switch (value.ValueKind)
            {
                case JsonValueKind.Object when value.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.Null):
                    text.Write('\n');
                    Object(text, value, indent + 2);
                    break;
                case JsonValueKind.Object:
                    text.Write(" {}\n");
                    break;
                case JsonValueKind.Array when value.GetArrayLength() == 0:
                    text.Write(" []\n");
                    break;
                case JsonValueKind.Array:
                    text.Write('\n');
                    foreach (var item in value.EnumerateArray())
                    {
                        text.Write(new string(' ', indent));
                        text.Write("- ");
                        if (item.ValueKind == JsonValueKind.Object) Object(text, item, indent + 2, firstLineIndented: false);
                        else text.Write(Scalar(item) + "\n");
                    }
                    break;
                default:
                    text.Write(' ');
                    text.Write(Scalar(value));
                    text.Write('\n');
                    break;
            }
        }

        private static string Key(string key) => NeedsQuotes(key) ? Quote(key) : key;

        private static string Scalar(JsonElement value) => value.ValueKind switch
        {
            JsonValueKind.String => NeedsQuotes(value.GetString()!) ? Quote(value.GetString()!) : value.GetString()!,
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => value.GetRawText(),
        };

        private static bool NeedsQuotes(string s) =>
            s.Length == 0 || s is "true" or "false" or "null" or "yes" or "no" or "on" or "off" or "y" or "n" or "~"
            || double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
            || s.IndexOfAny([':', '#', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`']) >= 0
            || s[0] is ' ' or '-' or '?' || s[^1] == ' ';

        private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
    }
}
