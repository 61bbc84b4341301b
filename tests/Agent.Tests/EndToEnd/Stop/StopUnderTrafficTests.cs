using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;
using Tripline.Tests.Deploy;
using Tripline.Tests.EndToEnd.LiveCapture;

namespace Tripline.Tests.EndToEnd.Stop;

/// <summary>
/// The published agent as a cluster runs it: state from a list/watch API server (over an uplink into the node's
/// network namespace), live capture on the veths of a bridge with pods in namespaces, short connections one after
/// another and one held open, then stopped the way a rolling update (SIGTERM) or an OOM kill (SIGKILL) stops it.
/// Every stop must leave a complete log: every connection the client finished before the signal, a start and an end
/// for every flow, no cut line. Needs root, iproute2, python3 and libpcap: without them these tests fail, saying
/// what to install.
/// </summary>
[Collection(PublishedAgentCollection.Name)]
public sealed class StopUnderTrafficTests(PublishedAgent published, ITestOutputHelper output)
{
    /// <summary>Ten stops in the suite; benchmarks/stop/measure.sh asks for fifty (and twenty kills) to measure the spread.</summary>
    private static int Count(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), out int n) && n > 0 ? n : fallback;

    [Fact]
    public async Task Sigterm_TenTimesAtRandomMomentsUnderTraffic_ExitsZeroWithACompleteLog()
    {
        StopScenario.RequirePrerequisites();
        await using var scenario = await StopScenario.StartAsync(published.Executable);
        var random = new Random(24);
        var stops = new List<double>();
        int runs = Count("TRIPLINE_STOP_SIGTERMS", 10);
        for (int i = 0; i < runs; i++)
        {
            // Moments: during start-up, before the policies are listed, while files rotate every few records, and at random.
            var moment = i switch
            {
                0 => StopMoment.StartUp,
                1 => StopMoment.BeforeSync,
                _ when i % 3 == 2 => StopMoment.Rotating,
                _ => StopMoment.Running,
            };
            var run = await scenario.RunOnceAsync(moment, TimeSpan.FromMilliseconds(random.Next(200, 2500)), kill: false);
            stops.Add(run.StopSeconds);
            output.WriteLine($"sigterm {i + 1,3} {moment,-10} stop {run.StopSeconds:F3} s, ran {run.RanFor.TotalSeconds:F2} s, {run.RecordsWrittenByAgent} records, {run.FinishedConnections.Count} connections finished before the signal");

            Assert.True(run.ExitCode == 0, $"run {i} ({moment}): exit {run.ExitCode}\n{run.Output}");
            Assert.Contains("stopped (SIGTERM)", run.Output, StringComparison.Ordinal);
            var log = FlowLogFiles.Read(run.FlowLogDirectory);
            Assert.True(log.CutLines == 0, $"run {i} ({moment}): {log.CutLines} cut line(s)\n{run.Output}");
            log.AssertEveryFlowStartedAndEnded($"run {i} ({moment})");
            Assert.Equal(run.RecordsWrittenByAgent, log.Records.Count);
            if (moment != StopMoment.StartUp)
            {
                log.AssertHasConnections(run.FinishedConnections, $"run {i} ({moment})", requireEnd: true);
                if (run.RanFor > TimeSpan.FromSeconds(1)) Assert.Contains(log.Records, r => r.DstPort == 8080 && r.SrcPort == scenario.ChattyPort && r.EndReason == "shutdown");
            }
            if (moment == StopMoment.BeforeSync)
            {
                Assert.All(log.Records, r => Assert.False(r.ClusterSynced, "a record written before the policies were listed must say cluster_synced: false"));
            }
        }
        stops.Sort();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"stop time over {stops.Count} SIGTERMs: median {stops[stops.Count / 2]:F3} s, p99 {stops[(int)Math.Ceiling(stops.Count * 0.99) - 1]:F3} s, max {stops[^1]:F3} s"));
    }

    [Fact]
    public async Task Sigkill_FiveTimesUnderTraffic_LosesNothingOlderThanTheFlushIntervalAndRestartsOnTheSameLog()
    {
        StopScenario.RequirePrerequisites();
        await using var scenario = await StopScenario.StartAsync(published.Executable);
        var random = new Random(25);
        string directory = scenario.NewFlowLogDirectory();
        int before = 0;
        int runs = Count("TRIPLINE_STOP_SIGKILLS", 5);
        var newest = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            var run = await scenario.RunOnceAsync(StopMoment.Running, TimeSpan.FromMilliseconds(random.Next(1500, 3000)), kill: true, flowLogDirectory: directory);
            Assert.Equal(137, run.ExitCode);

            var log = FlowLogFiles.Read(directory);
            // What the crash cost: the connections begun before the kill whose start record never reached the file.
            var lost = run.StartedConnections.Where(c => !log.Records.Any(r => r.SrcPort == c.SourcePort && r.DstPort == 8080 && r.Event == "start")).ToList();
            double window = lost.Count == 0 ? 0 : (run.SignalledAt - lost.Min(c => c.Start)).TotalSeconds;
            newest.Add(window);
            output.WriteLine($"sigkill {i + 1,3}: {run.StartedConnections.Count} connections begun, {lost.Count} without a start record, the oldest of them begun {window:F3} s before the kill; {log.CutLines} cut line(s)");
            Assert.True(log.CutLines <= 1, $"kill {i}: {log.CutLines} cut lines; a crash may cut only the last one");
            Assert.True(log.Records.Count >= before, $"kill {i}: the log shrank from {before} to {log.Records.Count} records");
            // The flush interval is 1 s; capture hands packets over within 150 ms.
            var old = run.StartedConnections.Where(c => c.Start < run.SignalledAt.AddSeconds(-1.5)).ToList();
            log.AssertHasConnections(old, $"kill {i}", requireEnd: false);

            // Every reader takes the cut line in its stride: flows counts it and goes on.
            var query = await PublishTests.RunAsync(published.Executable, ["flows", "--flow-log", directory, "--output", "json"], env: PublishTests.NoEnvironment);
            Assert.True(query.ExitCode == 0, $"flows after kill {i}: exit {query.ExitCode}\n{query.Output}");
            if (log.CutLines == 1) Assert.Contains("damaged line", query.Output, StringComparison.Ordinal);

            // A restart on the same directory trims the cut line and appends.
            var restart = await scenario.RunOnceAsync(StopMoment.Running, TimeSpan.FromMilliseconds(500), kill: false, flowLogDirectory: directory);
            Assert.True(restart.ExitCode == 0, $"restart after kill {i}: exit {restart.ExitCode}\n{restart.Output}");
            var after = FlowLogFiles.Read(directory);
            Assert.Equal(0, after.CutLines);
            Assert.True(after.Records.Count >= log.Records.Count, $"restart {i} lost records: {log.Records.Count} before, {after.Records.Count} after");
            before = after.Records.Count;
        }
        newest.Sort();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"over {newest.Count} SIGKILLs, records lost were of the last {newest[newest.Count / 2]:F3} s (median), {newest[^1]:F3} s (max)"));
    }
}

internal enum StopMoment
{
    /// <summary>SIGTERM as soon as the process runs, before it listens.</summary>
    StartUp,
    /// <summary>The policies' list is held back: the agent captures, but the cluster is not synced.</summary>
    BeforeSync,
    /// <summary>Flow-log files of 4 KiB, so that rotation and compression run all the time.</summary>
    Rotating,
    Running,
}

internal sealed record StopRun(
    int ExitCode,
    string Output,
    string FlowLogDirectory,
    double StopSeconds,
    TimeSpan RanFor,
    DateTime SignalledAt,
    long RecordsWrittenByAgent,
    IReadOnlyList<ClientConnection> FinishedConnections,
    IReadOnlyList<ClientConnection> StartedConnections);

internal sealed record ClientConnection(int SourcePort, DateTime Start, DateTime End);
