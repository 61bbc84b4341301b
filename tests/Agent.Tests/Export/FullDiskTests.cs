using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Tripline.Cli;
using Tripline.Export;
using Tripline.Tests.Support;

namespace Tripline.Tests.Export;

/// <summary>
/// The flow log on a full file system (a 256 KiB tmpfs mounted for the test): a failed write costs exactly the
/// records it held, counted, and every file still ends with a whole line, whether the log is one file (replay) or a
/// rotating directory (the agent). Mounting needs root: without it these tests fail, saying so.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FullDiskTests : IDisposable
{
    private readonly string _mount = Directory.CreateTempSubdirectory("tripline-full-").FullName;
    private readonly string _scratch = Directory.CreateTempSubdirectory("tripline-full-in-").FullName;
    private bool _mounted;

    private void MountSmallDisk()
    {
        Assert.True(Environment.UserName == "root", "the full-disk tests mount a 256 KiB tmpfs and need root (CI runs .ci/run as root)");
        Run("mount", $"-t tmpfs -o size=256k tripline-full {_mount}");
        _mounted = true;
    }

    private static byte[] Record(int i) => Encoding.UTF8.GetBytes(
        $$"""{"time":"2026-11-26T02:00:00.000000Z","event":"start","flow_id":"{{i:x16}}","n":{{i}},"pad":"{{new string('x', 600)}}"}""" + "\n");

    [Fact]
    public void FlowLogExporter_SingleFileOnAFullDisk_EndsAtAWholeLineAndCountsExactlyWhatWasLost()
    {
        MountSmallDisk();
        string path = Path.Combine(_mount, "flows.jsonl");
        var exporter = new FlowLogExporter(new SingleFileOutput(path));
        const int offered = 1_080;
        for (int i = 0; i < offered; i++) exporter.WriteRecord(i, static (w, n) => w.WriteRawValue(Record(n).AsSpan(0, Record(n).Length - 1), skipInputValidation: true));
        exporter.Dispose();

        var lines = WholeLines(path);
        Assert.True(exporter.RecordsLost > 0, "the disk never filled");
        Assert.Equal(offered, lines.Count + exporter.RecordsLost);
        Assert.Equal(exporter.RecordsWritten, lines.Count);
    }

    [Fact]
    public void FlowLogExporter_RotatingDirectoryOnAFullDisk_EndsEveryFileAtAWholeLineAndCountsExactlyWhatWasLost()
    {
        MountSmallDisk();
        var options = new FlowLogOptions { MaxFileBytes = 64 * 1024, MaxFiles = 100, MaxTotalBytes = 1L << 30, Compress = false };
        var output = new RotatingFileOutput(Path.Combine(_mount, RotatingFileOutput.DefaultFileName), options);
        var exporter = new FlowLogExporter(output);
        const int offered = 1_080;
        for (int i = 0; i < offered; i++) exporter.WriteRecord(i, static (w, n) => w.WriteRawValue(Record(n).AsSpan(0, Record(n).Length - 1), skipInputValidation: true));
        exporter.Dispose();

        int written = Directory.GetFiles(_mount).Sum(f => WholeLines(f).Count);
        Assert.True(exporter.RecordsLost > 0, "the disk never filled");
        Assert.Equal(offered, written + exporter.RecordsLost);
        Assert.Equal(exporter.RecordsWritten, written);
    }

    [Fact]
    public void Replay_FlowLogOnAFullDisk_ReportsTheLostRecordsAndLeavesOnlyWholeLines()
    {
        MountSmallDisk();
        // 600 whole connections: 1,200 records, far more than 256 KiB.
        string pcap = Path.Combine(_scratch, "many.pcap");
        using (var writer = new TestPcap(File.Create(pcap)))
        {
            uint c = TestPcap.Ip("10.244.0.3"), s = TestPcap.Ip("10.244.0.2");
            long t = 1_764_100_000_000_000;
            for (ushort port = 30000; port < 30600; port++)
            {
                writer.Write(t++, TestPcap.Tcp(c, port, s, 8080, 0x02));
                writer.Write(t++, TestPcap.Tcp(s, 8080, c, port, 0x12));
                writer.Write(t++, TestPcap.Tcp(c, port, s, 8080, 0x11));
                writer.Write(t++, TestPcap.Tcp(s, 8080, c, port, 0x11));
                writer.Write(t++, TestPcap.Tcp(c, port, s, 8080, 0x10));
            }
        }
        string manifests = Path.Combine(_scratch, "ns.yaml");
        File.WriteAllText(manifests, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
        string flowLog = Path.Combine(_mount, "flows.jsonl");
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        int exit = ReplayCommand.Run(new ReplayCommand.ReplayOptions([pcap], [manifests], flowLog, "n", false, 262_144, 60), stdout, stderr);

        Assert.Equal(ExitCodes.RuntimeFailure, exit);
        var match = System.Text.RegularExpressions.Regex.Match(stderr.ToString(), @"(\d+) flow-log records could not be written");
        Assert.True(match.Success, stderr.ToString());
        long lost = long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var lines = WholeLines(flowLog);
        Assert.Equal(1_200, lines.Count + lost);
    }

    /// <summary>The file's records; fails on a line that is not whole JSON or a file that does not end with a newline.</summary>
    private static List<string> WholeLines(string path)
    {
        string text = File.ReadAllText(path);
        Assert.True(text.Length == 0 || text.EndsWith('\n'), $"{path} ends inside a line");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        for (int i = 0; i < lines.Count; i++)
        {
            try
            {
                using var _ = JsonDocument.Parse(lines[i]);
            }
            catch (JsonException)
            {
                Assert.Fail($"{path}: line {i + 1} of {lines.Count} is cut: {lines[i][..Math.Min(80, lines[i].Length)]}");
            }
        }
        return lines;
    }

    private static void Run(string file, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} {arguments}: {error}");
    }

    public void Dispose()
    {
        if (_mounted) Run("umount", _mount);
        Directory.Delete(_mount, recursive: true);
        Directory.Delete(_scratch, recursive: true);
    }
}
