using System.Diagnostics;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using System.Text.Json;
using Tripline.Tests.Deploy;
using Tripline.Tests.EndToEnd.LiveCapture;
using Tripline.Tests.Support;

namespace Tripline.Tests.EndToEnd.Stop;

/// <summary>
/// <c>replay</c> and <c>flows --follow</c> of the published executable, stopped with SIGTERM and with Ctrl-C
/// (SIGINT): what was read before the signal is judged and written before the process exits.
/// </summary>
[Collection(PublishedAgentCollection.Name)]
public sealed partial class CommandStopTests(PublishedAgent published) : IDisposable
{
    private const int Sigint = 2;
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-command-stop-").FullName;

    [Theory]
    [InlineData(TestSignals.Term, "SIGTERM")]
    [InlineData(Sigint, "SIGINT")]
    public async Task Replay_SignalWhileStandardInputWaits_JudgesAndWritesEverythingReadThenExitsOne(int signal, string name)
    {
        string manifests = Path.Combine(_dir, "cluster.yaml");
        File.WriteAllText(manifests, """
            apiVersion: v1
            kind: Pod
            metadata: {name: client, namespace: shop, labels: {app: client}}
            spec: {containers: [{name: c, image: c}]}
            status: {phase: Running, podIP: 10.244.0.3, podIPs: [{ip: 10.244.0.3}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: web, namespace: shop, labels: {app: web}}
            spec: {containers: [{name: w, image: w, ports: [{containerPort: 8080}]}]}
            status: {phase: Running, podIP: 10.244.0.2, podIPs: [{ip: 10.244.0.2}]}
            """);
        string flowLog = Path.Combine(_dir, $"flows-{name}.jsonl");
        using var process = StartWithDefaultSignals(["replay", "--pcap", "-", "--manifests", manifests, "--flow-log", flowLog]);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            // Twenty connections, opened and talking, none closed: the capture goes on, as from a live tcpdump.
            var stdin = process.StandardInput.BaseStream;
            var pcap = new TestPcap(stdin);
            uint client = TestPcap.Ip("10.244.0.3"), server = TestPcap.Ip("10.244.0.2");
            long t = 1_764_100_000_000_000;
            for (ushort port = 40000; port < 40020; port++)
            {
                pcap.Write(t++, TestPcap.Tcp(client, port, server, 8080, 0x02));
                pcap.Write(t++, TestPcap.Tcp(server, 8080, client, port, 0x12));
                pcap.Write(t++, TestPcap.Tcp(client, port, server, 8080, 0x10, payload: 100));
            }
            await stdin.FlushAsync();
            WaitUntilRead((PipeStream)stdin, process);

            TestSignals.Kill(process.Id, signal);
            Assert.True(process.WaitForExit(30_000), "replay still running 30 s after " + name);
            process.WaitForExit();
            string text = string.Join('\n', output);

            Assert.True(process.ExitCode == 1, $"a replay stopped before the end of its input exits 1, not {process.ExitCode}:\n{text}");
            Assert.Contains($"stopped ({name})", text, StringComparison.Ordinal);
            Assert.Contains("Tripline replay:", text, StringComparison.Ordinal);
            var records = File.ReadAllLines(flowLog).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            for (int port = 40000; port < 40020; port++)
            {
                var flow = records.Where(r => r.GetProperty("src").GetProperty("port").GetInt32() == port).ToList();
                Assert.True(flow.Count == 2, $"connection from port {port}: {flow.Count} records\n{text}");
                Assert.Equal("shutdown", flow[1].GetProperty("end_reason").GetString());
                Assert.Equal("web", flow[1].GetProperty("dst").GetProperty("pod").GetString());
            }
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    [Theory]
    [InlineData("stdout")]
    [InlineData("file")]
    [InlineData("directory")]
    public async Task Run_PacketsFromStandardInputThenSigterm_EndsEveryFlowInTheLogAndExitsZero(string target)
    {
        string manifests = Path.Combine(_dir, "ns.yaml");
        File.WriteAllText(manifests, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
        string flowLog = target switch
        {
            "stdout" => "-",
            "file" => Path.Combine(_dir, "run-flows.jsonl"),
            _ => Directory.CreateDirectory(Path.Combine(_dir, "run-flows")).FullName,
        };
        using var process = PublishTests.Start(published.Executable,
            ["run", "--pcap", "-", "--manifests", manifests, "--flow-log", flowLog, "--listen", "127.0.0.1:0", "--node", "n"], PublishTests.NoEnvironment);
        var stdout = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var stderr = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) stdout.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) stderr.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var stdin = process.StandardInput.BaseStream;
            var pcap = new TestPcap(stdin);
            uint client = TestPcap.Ip("10.9.0.3"), server = TestPcap.Ip("10.9.0.2");
            long t = 1_764_100_000_000_000;
            for (ushort port = 41000; port < 41010; port++)
            {
                pcap.Write(t++, TestPcap.Tcp(client, port, server, 443, 0x02));
                pcap.Write(t++, TestPcap.Tcp(server, 443, client, port, 0x12));
            }
            await stdin.FlushAsync();
            WaitUntilRead((PipeStream)stdin, process);

            TestSignals.Kill(process.Id, TestSignals.Term);
            Assert.True(process.WaitForExit(30_000), "run still running 30 s after SIGTERM");
            process.WaitForExit();

            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}:\n{string.Join('\n', stderr)}");
            Assert.Contains(stderr, l => l.Contains("stopped (SIGTERM)", StringComparison.Ordinal));
            string[] lines = target switch
            {
                "stdout" => [.. stdout],
                "file" => File.ReadAllLines(flowLog),
                _ => [.. Directory.GetFiles(flowLog).SelectMany(File.ReadAllLines)],
            };
            var records = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
            for (int port = 41000; port < 41010; port++)
            {
                var flow = records.Where(r => r.GetProperty("src").GetProperty("port").GetInt32() == port).Select(r => r.GetProperty("event").GetString()).ToList();
                Assert.True(flow.SequenceEqual(["start", "end"]), $"port {port}: {string.Join(",", flow)}\n{string.Join('\n', stderr)}");
            }
            Assert.All(records.Where(r => r.GetProperty("event").GetString() == "end"), r => Assert.Equal("shutdown", r.GetProperty("end_reason").GetString()));
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    [Fact]
    public async Task Run_StopThatCannotFinish_ExitsOneAtItsOwnDeadlineSayingWhatWasLost()
    {
        // The flow log goes to standard output, which nobody reads: once the pipe is full every write waits forever,
        // and so would the stop, but for the agent's own deadline.
        using var process = PublishTests.Start(published.Executable,
            ["run", "--pcap", DeployFiles.Path("deploy/demo/traffic.pcap"), "--manifests", DeployFiles.Path("deploy/demo"), "--flow-log", "-",
             "--listen", "127.0.0.1:0", "--shutdown-timeout", "1s"], PublishTests.NoEnvironment);
        var stderr = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var listening = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            stderr.Enqueue(e.Data);
            if (e.Data.Contains("listening on", StringComparison.Ordinal)) listening.TrySetResult();
        };
        process.BeginErrorReadLine();
        try
        {
            await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
            TestSignals.Kill(process.Id, TestSignals.Term);
            Assert.True(process.WaitForExit(30_000), "the agent did not exit at its deadline");
            process.WaitForExit();

            Assert.Equal(1, process.ExitCode);
            Assert.Contains(stderr, l => l.Contains("stop took longer than --shutdown-timeout (1 s)", StringComparison.Ordinal) && l.Contains("blocked in a write", StringComparison.Ordinal));
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    [Theory]
    [InlineData(TestSignals.Term, "SIGTERM")]
    [InlineData(Sigint, "SIGINT")]
    public async Task FlowsFollow_Signal_PrintsEverythingReadAndExitsZero(int signal, string name)
    {
        string log = Path.Combine(_dir, $"follow-{name}.log");
        string[] old = [.. Enumerable.Range(0, 50).Select(i => Record(i))];
        File.WriteAllLines(log, old);
        using var process = StartWithDefaultSignals(["flows", "--flow-log", log, "--follow", "--output", "json"]);
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var printed = new SemaphoreSlim(0);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lines.Enqueue(e.Data); printed.Release(); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) errors.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await WaitForLinesAsync(lines, printed, 50);
            await File.AppendAllLinesAsync(log, [Record(50), Record(51)]);
            await WaitForLinesAsync(lines, printed, 52);

            TestSignals.Kill(process.Id, signal);
            Assert.True(process.WaitForExit(30_000), "flows --follow still running 30 s after " + name);
            process.WaitForExit();

            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {string.Join('\n', errors)}");
            Assert.Equal(52, lines.Count);
            Assert.Contains(errors, e => e.Contains("52 of 52 records matched", StringComparison.Ordinal));
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    /// <summary>
    /// Starts the published executable with SIGINT at its default action. A test run started in the background by a
    /// shell inherits SIGINT ignored, and a process that starts with a signal ignored keeps it ignored (the runtime
    /// follows that convention): an interactive user's Ctrl-C is what these tests stand for.
    /// </summary>
    private System.Diagnostics.Process StartWithDefaultSignals(string[] args) =>
        PublishTests.Start("env", ["--default-signal=INT", published.Executable, .. args], PublishTests.NoEnvironment);

    private static string Record(int i) =>
        $"{{\"time\":\"2026-11-26T02:00:{i % 60:00}.000000Z\",\"event\":\"start\",\"flow_id\":\"{i:x16}\",\"node\":\"n\",\"interface\":\"pcap\",\"protocol\":\"TCP\","
        + $"\"src\":{{\"ip\":\"10.0.0.1\",\"port\":{40000 + i},\"kind\":\"external\"}},\"dst\":{{\"ip\":\"10.0.0.2\",\"port\":80,\"kind\":\"external\"}},"
        + "\"initiator\":\"observed\",\"verdict\":\"allow\",\"egress\":null,\"ingress\":null,\"packets\":{\"sent\":1,\"received\":0},\"bytes\":{\"sent\":60,\"received\":0}}";

    private static async Task WaitForLinesAsync(System.Collections.Concurrent.ConcurrentQueue<string> lines, SemaphoreSlim printed, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (lines.Count < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {lines.Count} of {count} lines printed");
            await printed.WaitAsync(TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>Waits until the reader has taken every byte written into its standard input (FIONREAD on the pipe).</summary>
    private static void WaitUntilRead(PipeStream stdin, Process process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            Assert.Equal(0, Ioctl((int)stdin.SafePipeHandle.DangerousGetHandle(), Fionread, out int unread));
            if (unread == 0) return;
            Assert.False(process.HasExited, "replay exited while its input was written");
            Assert.True(DateTime.UtcNow < deadline, $"{unread} bytes still unread after 30 s");
            Thread.Sleep(10);
        }
    }

    private const ulong Fionread = 0x541B;

    [LibraryImport("libc.so.6", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, ulong request, out int value);

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
