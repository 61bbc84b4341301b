using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tripline.Tests.Report;

/// <summary>
/// A small cluster and a hand-written flow log of it, written to a temporary directory. Namespace <c>a</c> denies
/// ingress by default and lets <c>web</c> reach <c>db</c> on 5432 (a second rule, from <c>admin</c> on 22, matches no
/// flow; <c>orphan</c> selects no pod); namespace <c>b</c> has no policy. Records carry <c>tls</c> and <c>mesh</c>
/// as design §10 writes them.
/// </summary>
internal sealed class ReportInputs : IDisposable
{
    public ReportInputs()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("tripline-report-").FullName;
        Manifests = Path.Combine(Directory, "cluster.yaml");
        File.WriteAllText(Manifests, ManifestsYaml);
        Log = Path.Combine(Directory, "flows.log");
    }

    public string Directory { get; }
    public string Manifests { get; }
    public string Log { get; }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    public const string ManifestsYaml = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: a, labels: {kubernetes.io/metadata.name: a}}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: b, labels: {kubernetes.io/metadata.name: b}}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: web-0
          namespace: a
          uid: u-web
          labels: {app: web}
          ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: web, uid: s1, controller: true}]
        spec: {nodeName: node-1, containers: [{name: web, image: web, ports: [{containerPort: 8080, protocol: TCP}]}]}
        status: {phase: Running, podIP: 10.0.0.10}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: db-0
          namespace: a
          uid: u-db
          labels: {app: db}
          ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: s2, controller: true}]
        spec: {nodeName: node-1, containers: [{name: db, image: db, ports: [{containerPort: 5432, protocol: TCP}]}]}
        status: {phase: Running, podIP: 10.0.0.20}
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: client-0
          namespace: b
          uid: u-client
          labels: {app: client}
          ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: client, uid: s3, controller: true}]
        spec: {nodeName: node-2, containers: [{name: client, image: client}]}
        status: {phase: Running, podIP: 10.0.1.30}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny-ingress, namespace: a}
        spec: {podSelector: {}, policyTypes: [Ingress]}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: db-access, namespace: a}
        spec:
          podSelector: {matchLabels: {app: db}}
          policyTypes: [Ingress]
          ingress:
          - from: [{podSelector: {matchLabels: {app: web}}}]
            ports: [{port: 5432, protocol: TCP}]
          - from: [{podSelector: {matchLabels: {app: admin}}}]
            ports: [{port: 22, protocol: TCP}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: orphan, namespace: a}
        spec: {podSelector: {matchLabels: {app: nothing}}, policyTypes: [Ingress]}
        """;

    public static readonly DateTimeOffset Start = new(2026, 11, 26, 2, 0, 0, TimeSpan.Zero);

    /// <summary>A pod end of a record as the agent writes it.</summary>
    public static JsonObject Pod(string ns, string name, string workload, string ip, int? port, string? node = "node-1", params (string Key, string Value)[] labels)
    {
        var end = new JsonObject { ["ip"] = ip };
        if (port is { } p) end["port"] = p;
        end["kind"] = "pod";
        end["namespace"] = ns;
        end["pod"] = name;
        end["uid"] = "u-" + name;
        end["workload"] = workload;
        var labelObject = new JsonObject();
        foreach (var (key, value) in labels) labelObject[key] = value;
        end["labels"] = labelObject;
        if (node is not null) end["node"] = node;
        return end;
    }

    public static JsonObject External(string ip, int? port)
    {
        var end = new JsonObject { ["ip"] = ip };
        if (port is { } p) end["port"] = p;
        end["kind"] = "external";
        return end;
    }

    public static JsonObject Web(int? port = 40000) => Pod("a", "web-0", "StatefulSet/web", "10.0.0.10", port, "node-1", ("app", "web"));
    public static JsonObject Db(int? port = 5432) => Pod("a", "db-0", "StatefulSet/db", "10.0.0.20", port, "node-1", ("app", "db"));
    public static JsonObject Client(int? port = 50000) => Pod("b", "client-0", "StatefulSet/client", "10.0.1.30", port, "node-2", ("app", "client"));

    public static JsonObject Side(bool isolated, bool allowed, params string[] policies)
    {
        var list = new JsonArray();
        foreach (string p in policies) list.Add(p);
        return new JsonObject { ["isolated"] = isolated, ["allowed"] = allowed, ["policies"] = list };
    }

    private static int _flowId;

    /// <summary>One record as the flow log holds it, fields in the writer's order.</summary>
    public static string Record(string @event, DateTimeOffset first, DateTimeOffset time, string node, JsonObject src, JsonObject dst, string verdict,
        JsonObject? egress, JsonObject? ingress, string enforcement = "delivered", string protocol = "TCP", bool? tls = null, JsonObject? mesh = null)
    {
        var record = new JsonObject
        {
            ["time"] = Format(time),
            ["event"] = @event,
            ["flow_id"] = Interlocked.Increment(ref _flowId).ToString("x16", CultureInfo.InvariantCulture),
            ["node"] = node,
            ["interface"] = "pcap",
            ["protocol"] = protocol,
            // Nodes are cloned: a test reuses the same ends and sides in many records.
            ["src"] = src.DeepClone(),
            ["dst"] = dst.DeepClone(),
            ["initiator"] = "observed",
            ["verdict"] = verdict,
            ["egress"] = egress?.DeepClone(),
            ["ingress"] = ingress?.DeepClone(),
            ["enforcement"] = enforcement,
        };
        if (tls is { } t) record["tls"] = t;
        if (mesh is not null) record["mesh"] = mesh.DeepClone();
        record["packets"] = new JsonObject { ["sent"] = 3, ["received"] = 2 };
        record["first_seen"] = Format(first);
        record["last_seen"] = Format(time);
        return record.ToJsonString();
    }

    public static JsonObject Mesh(bool src, bool dst, string peerAuthentication) =>
        new() { ["src"] = src, ["dst"] = dst, ["peer_authentication"] = peerAuthentication };

    public static string Format(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// The log: web→db:5432 allowed (4 flows, one of them plaintext between meshed pods), client→db:5432 denied at
    /// db's ingress (3 flows, 2 not enforced), client→web:8080 denied, plaintext into a STRICT destination, web→client:9000
    /// plaintext but client is not meshed (no finding), client→8.8.8.8:443 allowed; plus a start and an update record,
    /// an aggregate record, a line cut by a crash.
    /// </summary>
    public string WriteLog()
    {
        var lines = new List<string>();
        var t = Start;
        DateTimeOffset Next(int seconds) => t = t.AddSeconds(seconds);
        var allowedEgress = Side(false, true);
        lines.Add(Record("start", Next(1), t, "node-1", Web(), Db(), "allow", allowedEgress, Side(true, true, "a/db-access")));
        for (int i = 0; i < 4; i++)
        {
            var first = Next(3);
            lines.Add(Record("end", first, Next(2), "node-1", Web(40000 + i), Db(), "allow", allowedEgress, Side(true, true, "a/db-access"),
                tls: i == 3 ? false : true, mesh: Mesh(true, true, "PERMISSIVE")));
        }
        lines.Add(Record("update", Next(1), t, "node-2", Client(), Db(), "deny", allowedEgress, Side(true, false, "a/db-access", "a/default-deny-ingress"), "not_enforced"));
        for (int i = 0; i < 3; i++)
        {
            var first = Next(5);
            lines.Add(Record("end", first, Next(1), "node-2", Client(50000 + i), Db(), "deny", allowedEgress, Side(true, false, "a/db-access", "a/default-deny-ingress"),
                i == 2 ? "enforced" : "not_enforced"));
        }
        var strictFirst = Next(2);
        lines.Add(Record("end", strictFirst, Next(1), "node-2", Client(51000), Web(8080), "deny", allowedEgress, Side(true, false, "a/default-deny-ingress"), "not_enforced",
            tls: false, mesh: Mesh(false, true, "STRICT")));
        var plainFirst = Next(2);
        lines.Add(Record("end", plainFirst, Next(1), "node-1", Web(41000), Client(9000), "allow", allowedEgress, Side(false, true), tls: false, mesh: Mesh(true, false, "none")));
        var outFirst = Next(2);
        lines.Add(Record("end", outFirst, Next(1), "node-2", Client(52000), External("8.8.8.8", 443), "allow", allowedEgress, null));
        lines.Add($$"""{"time":"{{Format(Next(1))}}","event":"aggregate","node":"node-1","protocol":"UDP","src":{"kind":"external","ip":"192.0.2.1"},"dst":{"kind":"external","ip":"192.0.2.2"},"flows":7}""");
        lines.Add("{\"time\":\"2026-11-26T02:");
        File.WriteAllText(Log, string.Join('\n', lines) + "\n");
        return Log;
    }

    /// <summary>How the test groups an end: namespace/workload for a pod, the address otherwise (as the report's tables do).</summary>
    public static string Group(JsonElement end) => end.GetProperty("kind").GetString() == "pod"
        ? $"{end.GetProperty("namespace").GetString()}/{end.GetProperty("workload").GetString()}"
        : end.GetProperty("ip").GetString()!;

    /// <summary>How the map names an end: the workload, or the outside.</summary>
    public static string MapId(JsonElement end) => end.GetProperty("kind").GetString() switch
    {
        "pod" => Group(end),
        "node" => "nodes",
        _ => "outside",
    };

    /// <summary>The end records of a log, parsed by the test itself.</summary>
    public static List<JsonElement> EndRecords(string log)
    {
        var ends = new List<JsonElement>();
        foreach (string line in File.ReadLines(log))
        {
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line);
            }
            catch (JsonException)
            {
                continue;
            }
            if (document.RootElement.GetProperty("event").GetString() == "end") ends.Add(document.RootElement.Clone());
        }
        return ends;
    }
}
