using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace Tripline.Tests.EndToEnd.Stop;

/// <summary>A flow-log directory as a reader finds it: every file (rotated, gzipped, active), every line.</summary>
internal sealed class FlowLogFiles
{
    public List<LoggedRecord> Records { get; } = [];

    /// <summary>Lines that are not a whole record: a file that does not end with a newline, or a line that is not JSON.</summary>
    public int CutLines { get; private set; }

    public static FlowLogFiles Read(string directory)
    {
        var files = new FlowLogFiles();
        foreach (string path in Directory.GetFiles(directory).Where(p => !p.EndsWith(".tmp", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            byte[] bytes;
            try
            {
                using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using Stream stream = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
                using var memory = new MemoryStream();
                stream.CopyTo(memory);
                bytes = memory.ToArray();
            }
            catch (FileNotFoundException)
            {
                continue; // compressed and removed while listed: its .gz is in the list
            }
            if (bytes.Length == 0) continue;
            string text = Encoding.UTF8.GetString(bytes);
            int end = text.LastIndexOf('\n');
            // What follows the last newline is a line a crash cut short.
            if (end < text.Length - 1) files.CutLines++;
            foreach (string line in text[..(end + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    using var document = JsonDocument.Parse(line);
                    files.Records.Add(LoggedRecord.From(document.RootElement));
                }
                catch (JsonException)
                {
                    // A damaged line before the end of a file: what a failed write must never leave.
                    files.CutLines++;
                }
            }
        }
        return files;
    }

    public void AssertEveryFlowStartedAndEnded(string what)
    {
        foreach (var flow in Records.Where(r => r.Event != "aggregate").GroupBy(r => r.FlowId))
        {
            int starts = flow.Count(r => r.Event == "start"), ends = flow.Count(r => r.Event == "end");
            Assert.True(starts == 1 && ends == 1, $"{what}: flow {flow.Key} has {starts} start and {ends} end records");
        }
    }

    public void AssertHasConnections(IEnumerable<ClientConnection> connections, string what, bool requireEnd)
    {
        var missing = new List<string>();
        foreach (var connection in connections)
        {
            var records = Records.Where(r => r.SrcPort == connection.SourcePort && r.DstPort == 8080).ToList();
            if (!records.Any(r => r.Event == "start") || (requireEnd && !records.Any(r => r.Event == "end")))
            {
                missing.Add($"{connection.SourcePort} ({connection.Start:HH:mm:ss.fff}-{connection.End:HH:mm:ss.fff}): {string.Join(",", records.Select(r => r.Event))}");
            }
        }
        Assert.True(missing.Count == 0, $"{what}: {missing.Count} of {connections.Count()} connections missing from the log:\n{string.Join('\n', missing)}");
    }
}

internal sealed record LoggedRecord(string FlowId, string Event, int SrcPort, int DstPort, string? EndReason, bool ClusterSynced)
{
    public static LoggedRecord From(JsonElement r) => new(
        r.GetProperty("flow_id").GetString()!,
        r.GetProperty("event").GetString()!,
        r.GetProperty("src").TryGetProperty("port", out var sp) ? sp.GetInt32() : -1,
        r.GetProperty("dst").TryGetProperty("port", out var dp) ? dp.GetInt32() : -1,
        r.TryGetProperty("end_reason", out var reason) ? reason.GetString() : null,
        !r.TryGetProperty("cluster_synced", out var synced) || synced.GetBoolean());
}
