using System.Globalization;
using System.Text;
using System.Text.Json;
using Tripline.Export;
using Tripline.Records;

namespace Tripline.Cli;

/// <summary>
/// A flow as its records tell it, for <c>tripline explain --flow-id</c>: the last record of the flow (its end when
/// there is one) gives the endpoints to judge, and what the network did with the verdict.
/// </summary>
internal sealed record RecordedFlow(string Id, string Time, string Event, string Source, string Destination, int Port, string Protocol,
    string Verdict, string Enforcement, long Sent, long Received)
{
    public static RecordedFlow? Find(string? flowLog, string id, List<string> problems)
    {
        if (string.IsNullOrEmpty(flowLog))
        {
            problems.Add("--flow-id: give the flow log to look in (--flow-log)");
            return null;
        }
        if (!File.Exists(flowLog) && !Directory.Exists(flowLog))
        {
            problems.Add($"--flow-log: no such file or directory: {flowLog}");
            return null;
        }
        byte[] needle = Encoding.UTF8.GetBytes($"\"flow_id\":\"{id.ToLowerInvariant()}\"");
        byte[]? last = null;
        foreach (string file in FlowLogReader.ListFiles(flowLog))
        {
            try
            {
                FlowLogReader.ReadFile(file, line =>
                {
                    if (line.IndexOf(needle) >= 0) last = line.ToArray();
                });
            }
            catch (Exception ex) when (ex is FileNotFoundException or InvalidDataException)
            {
                // Rotated away while listed, or a damaged archive: the rest still counts.
            }
        }
        if (last is null)
        {
            problems.Add($"--flow-id: no record of flow {id} in {flowLog}");
            return null;
        }
        using var record = JsonDocument.Parse(last);
        var root = record.RootElement;
        string Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        var src = root.GetProperty("src");
        var dst = root.GetProperty("dst");
        int port = dst.TryGetProperty("port", out var p) ? p.GetInt32() : 0;
        long Count(string name) => root.TryGetProperty("packets", out var packets) && packets.TryGetProperty(name, out var n) ? n.GetInt64() : 0;
        return new RecordedFlow(id, Text(root, "time"), Text(root, "event"), Text(src, "ip"), Text(dst, "ip"), port,
            Text(root, "protocol") is "ICMPv6" ? "ICMP" : Text(root, "protocol"), Text(root, "verdict"), Text(root, "enforcement") is { Length: > 0 } e ? e : "unknown",
            Count("sent"), Count("received"));
    }

    /// <summary>What was recorded, before the explanation of the verdict.</summary>
    public string Describe()
    {
        string meaning = Enforcement switch
        {
            "not_enforced" => "denied, yet it went through (answered or delivered): the network did not enforce the policy",
            "enforced" => "denied, and never answered: the network stopped it",
            "dropped" => "allowed, yet unanswered after retransmissions or refused on the way: the network dropped it",
            "delivered" => "allowed and answered",
            _ => "not known from the packets (seen mid-stream, too short, or one-way by design)",
        };
        return string.Create(CultureInfo.InvariantCulture,
            $"recorded flow {Id} ({Event} record at {Time}): verdict {Verdict}, enforcement {Enforcement}: {meaning}; packets sent {Sent}, received {Received}\n\n");
    }
}
