using System.Diagnostics;
using System.Text;
using Tripline.Cli;
using Tripline.Export;
using Tripline.Hosting;
using Tripline.Tests.Export;
using Tripline.Records;

namespace Tripline.Tests.Cli;

// Measures process-wide memory while querying: other tests allocating in parallel would blur it.
[Collection(nameof(Tripline.Tests.EndToEnd.AllocationMeasurements))]
public sealed class FlowsCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-flows-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int Run(FlowsCommand.FlowsOptions options, out string stdout, out string stderr, FlowsCommand.QueryStats? stats = null)
    {
        using var output = new MemoryStream();
        using var error = new StringWriter();
        int code = FlowsCommand.Run(options, output, error, TimeProvider.System, CancellationToken.None, stats);
        stdout = Encoding.UTF8.GetString(output.ToArray());
        stderr = error.ToString();
        return code;
    }

    /// <summary>The demo replayed through the agent's own flow-log writer, into rotated files.</summary>
    private async Task<string> WriteDemoLogAsync(DemoTraffic demo)
    {
        await using (var agent = await Tripline.Tests.Http.AgentUnderTest.StartAsync(demo, o => o with { FlowLog = _dir })) { }
        return _dir;
    }

    [Fact]
    public async Task Run_DeniedInNamespace_PrintsTableOfDeniedFlows()
    {
        using var demo = new DemoTraffic();
        string dir = await WriteDemoLogAsync(demo);
        var stats = new FlowsCommand.QueryStats();
        int code = Run(new(dir, new FlowFilterOptions { Namespace = "shop", Verdict = "deny", Since = "2026-11-26T01:00:00Z" }, "table", false), out string stdout, out string stderr, stats);
        Assert.Equal(ExitCodes.Success, code);
        var rows = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("TIME", rows[0]);
        Assert.Equal(4, rows.Length - 1);
        Assert.All(rows.Skip(1), r => Assert.Contains("tools/scanner", r));
        Assert.Contains("ingress:!shop/default-deny", rows[1]);
        Assert.Equal(4, stats.Matched);
        Assert.Equal(12, stats.Records);
        Assert.Contains("4 of 12 records matched", stderr);
    }

    [Fact]
    public async Task Run_JsonOutput_PrintsTheRecordsUnchanged()
    {
        using var demo = new DemoTraffic();
        string dir = await WriteDemoLogAsync(demo);
        Run(new(dir, new FlowFilterOptions { Protocol = "UDP" }, "json", false), out string stdout, out _);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string original = File.ReadAllLines(Path.Combine(dir, RotatingFileOutput.DefaultFileName)).First(l => l.Contains("\"UDP\"", StringComparison.Ordinal));
        Assert.Equal(original, lines[0]);
    }

    [Theory]
    [InlineData("--output", "yaml")]
    [InlineData("--verdict", "maybe")]
    [InlineData("--flow-log", "/nonexistent/tripline")]
    public void Run_BadUsage_Exits2NamingTheOption(string option, string value)
    {
        var options = new FlowsCommand.FlowsOptions(_dir, new FlowFilterOptions(), "table", false);
        options = option switch
        {
            "--output" => options with { Output = value },
            "--verdict" => options with { Filter = new FlowFilterOptions { Verdict = value } },
            _ => options with { FlowLog = value },
        };
        Assert.Equal(ExitCodes.BadUsage, Run(options, out _, out string stderr));
        Assert.Contains(option + ":", stderr);
    }

    [Fact]
    public void Command_ParsesContractOptionNames()
    {
        var parse = TriplineCommand.Create().Parse(["flows", "--flow-log", _dir, "--namespace", "a", "--pod", "a/b", "--verdict", "deny", "--since", "30m", "--until", "2026-11-26T02:10:00Z",
            "--output", "json", "--workload", "w", "--ip", "10.0.0.0/8", "--port", "80", "--protocol", "TCP", "--policy", "p", "--follow"]);
        Assert.Empty(parse.Errors);
    }

    [Fact]
    public void Run_DamagedLastLine_IsSkippedAndCounted()
    {
        string path = Path.Combine(_dir, "tripline-flows.log");
        File.WriteAllText(path, "{\"time\":\"2026-11-26T02:00:00.000000Z\",\"verdict\":\"deny\"}\n{\"time\":\"2026-11-26T02:00:01.000000Z\",\"verd");
        var stats = new FlowsCommand.QueryStats();
        Assert.Equal(ExitCodes.Success, Run(new(path, new FlowFilterOptions(), "json", false), out string stdout, out string stderr, stats));
        Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(1, stats.Corrupt);
        Assert.Contains("1 damaged line(s) skipped", stderr);
    }

    [Fact]
    public async Task Run_Follow_PrintsRecordsAppendedLater()
    {
        string path = Path.Combine(_dir, "tripline-flows.log");
        File.WriteAllText(path, "{\"time\":\"2026-11-26T02:00:00.000000Z\",\"verdict\":\"allow\"}\n");
        using var cancel = new CancellationTokenSource();
        var output = new SignallingStream();
        var run = Task.Run(() => FlowsCommand.Run(new(path, new FlowFilterOptions { Verdict = "deny" }, "json", true), output, TextWriter.Null, TimeProvider.System, cancel.Token));
        await Task.Delay(300);
        File.AppendAllText(path, "{\"time\":\"2026-11-26T02:00:01.000000Z\",\"verdict\":\"deny\"}\n");
        Assert.True(await output.Written.Task.WaitAsync(TimeSpan.FromSeconds(10)) > 0);
        cancel.Cancel();
        Assert.Equal(ExitCodes.Success, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("{\"time\":\"2026-11-26T02:00:01.000000Z\",\"verdict\":\"deny\"}\n", output.Text);
    }

    /// <summary>Memory stays flat: reading a 4x larger log does not take 4x the memory.</summary>
    [Fact]
    public void Run_LargerLog_MemoryDoesNotGrowWithFileSize()
    {
        long small = PeakAllocatedWhileQuerying(WriteSynthetic("small.log", 20_000));
        long large = PeakAllocatedWhileQuerying(WriteSynthetic("large.log", 80_000));
        Assert.True(large < small * 2 + (4 << 20), $"small {small:N0} B, large {large:N0} B retained at peak");
    }

    private long PeakAllocatedWhileQuerying(string path)
    {
        GC.Collect();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        long peak = 0;
        using var sampling = new Timer(_ => Interlocked.Exchange(ref peak, Math.Max(Interlocked.Read(ref peak), GC.GetTotalMemory(false) - before)), null, 0, 5);
        var stats = new FlowsCommand.QueryStats();
        var sw = Stopwatch.StartNew();
        Run(new(path, new FlowFilterOptions { Namespace = "ns-7", Verdict = "deny" }, "json", false), out _, out _, stats);
        GC.Collect();
        Interlocked.Exchange(ref peak, Math.Max(Interlocked.Read(ref peak), GC.GetTotalMemory(false) - before));
        Assert.True(stats.Matched > 0);
        return Interlocked.Read(ref peak);
    }

    private string WriteSynthetic(string name, int records)
    {
        string path = Path.Combine(_dir, name);
        using var writer = new StreamWriter(path);
        for (int i = 0; i < records; i++)
        {
            writer.Write($"{{\"time\":\"2026-11-26T02:{i / 1000 % 60:00}:{i % 60:00}.000000Z\",\"event\":\"start\",\"protocol\":\"TCP\",\"src\":{{\"ip\":\"10.0.{i % 200}.{i % 250}\",\"port\":{30000 + i % 20000},\"kind\":\"pod\",\"namespace\":\"ns-{i % 50}\",\"pod\":\"p-{i}\"}},");
            writer.WriteLine($"\"dst\":{{\"ip\":\"10.1.0.{i % 250}\",\"port\":8080,\"kind\":\"pod\",\"namespace\":\"ns-{(i + 1) % 50}\"}},\"verdict\":\"{(i % 3 == 0 ? "deny" : "allow")}\",\"egress\":null,\"ingress\":null}}");
        }
        return path;
    }

    private sealed class SignallingStream : MemoryStream
    {
        public TaskCompletionSource<int> Written { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string Text => Encoding.UTF8.GetString(ToArray());

        public override void Write(byte[] buffer, int offset, int count)
        {
            base.Write(buffer, offset, count);
            if (count > 0) Written.TrySetResult(count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            base.Write(buffer);
            if (!buffer.IsEmpty) Written.TrySetResult(buffer.Length);
        }
    }
}
