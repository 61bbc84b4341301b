using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tripline.Tests.EndToEnd.LiveCapture;

/// <summary><c>tripline run</c> as a child process inside the node's namespace, with manifests and a flow log of its own.</summary>
internal sealed partial class AgentProcess : IDisposable
{
    private readonly TestNode _node;
    private readonly string _directory;

    public AgentProcess(TestNode node, string manifests, string extraArguments)
    {
        _node = node;
        _directory = Directory.CreateTempSubdirectory("tripline-e2e-").FullName;
        File.WriteAllText(Path.Combine(_directory, "cluster.yaml"), manifests);
        FlowLog = Path.Combine(_directory, "flows.jsonl");
        string tripline = Path.Combine(AppContext.BaseDirectory, "tripline.dll");
        if (!File.Exists(tripline)) throw new FileNotFoundException("the agent is not beside the tests", tripline);
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        Process = node.Start(node.Namespace, dotnet,
            $"{tripline} run --manifests {_directory}/cluster.yaml --flow-log {FlowLog} --listen 127.0.0.1:0 --node test-node " +
            $"--interfaces cali* {extraArguments}");
    }

    public RunningProcess Process { get; }

    public string FlowLog { get; }

    /// <summary>Port of the HTTP endpoints, read from the agent's "listening on" line.</summary>
    public int Port()
    {
        Process.WaitFor("listening on", TimeSpan.FromSeconds(30));
        var match = Process.Lines.Select(l => ListenLine().Match(l.Line)).First(m => m.Success);
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>GET on the agent's endpoint from inside the node namespace: status code and body.</summary>
    public (int Status, string Body) Get(string path)
    {
        string code = "import sys,urllib.request,urllib.error\ntry:\n r=urllib.request.urlopen(sys.argv[1],timeout=5); print(r.status); print(r.read().decode())\n" +
            "except urllib.error.HTTPError as e:\n print(e.code); print(e.read().decode())";
        string script = Path.Combine(_directory, "get.py");
        File.WriteAllText(script, code);
        string output = TestNode.Run("ip", $"netns exec {_node.Namespace} python3 {script} http://127.0.0.1:{Port()}{path}");
        int newline = output.IndexOf('\n', StringComparison.Ordinal);
        return (int.Parse(output[..newline], System.Globalization.CultureInfo.InvariantCulture), output[(newline + 1)..]);
    }

    /// <summary>Records written so far (the log is flushed every few seconds).</summary>
    public List<JsonElement> Records()
    {
        if (!File.Exists(FlowLog)) return [];
        using var stream = new FileStream(FlowLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var records = new List<JsonElement>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            try
            {
                records.Add(JsonDocument.Parse(line).RootElement.Clone());
            }
            catch (JsonException)
            {
                // A line being written; the next read sees it whole.
            }
        }
        return records;
    }

    public List<JsonElement> WaitForRecords(Func<List<JsonElement>, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        List<JsonElement> records;
        do
        {
            records = Records();
            if (condition(records)) return records;
            Thread.Sleep(200);
        }
        while (DateTime.UtcNow < deadline);
        throw new TimeoutException($"flow log: no {what} within {timeout.TotalSeconds} s; {records.Count} records:\n" +
            string.Join('\n', records.Select(r => r.GetRawText())) + "\nagent:\n" + Process.Output);
    }

    /// <summary>SIGTERM, then the exit code (the agent drains, ends every flow with shutdown, flushes).</summary>
    public int Stop()
    {
        Process.Signal(TestSignals.Term);
        if (!Process.Process.WaitForExit(30_000)) throw new TimeoutException("agent still running 30 s after SIGTERM:\n" + Process.Output);
        Process.Process.WaitForExit();
        return Process.Process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex(@"listening on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();
}
