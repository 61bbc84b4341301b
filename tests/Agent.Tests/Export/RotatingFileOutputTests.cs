using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Tripline.Export;
using Tripline.Records;

namespace Tripline.Tests.Export;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RotatingFileOutputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-rot-").FullName;

    public void Dispose()
    {
        File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.Delete(_dir, recursive: true);
    }

    private static byte[] Line(int i) => Encoding.UTF8.GetBytes($"{{\"time\":\"2026-11-26T02:00:{i % 60:00}.000000Z\",\"event\":\"start\",\"n\":{i},\"pad\":\"{new string('x', 200)}\"}}\n");

    [Fact]
    public void Write_TinySizeLimit_RotatesCompressesAndKeepsRetention()
    {
        var options = new FlowLogOptions { MaxFileBytes = 4096, MaxFiles = 3, MaxTotalBytes = 1 << 20 };
        var output = new RotatingFileOutput(Path.Combine(_dir, "tripline-flows.log"), options);
        for (int i = 0; i < 200; i++) output.Write(Line(i));
        output.Dispose();

        var rotated = output.RotatedFiles();
        Assert.Equal(3, rotated.Count);
        Assert.All(rotated, f => Assert.EndsWith(".log.gz", f.Name));
        Assert.True(output.Rotations > 10);
        foreach (var file in Directory.GetFiles(_dir))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(file));
        }
        Assert.True(new FileInfo(output.ActivePath).Length <= 4096);
        // Every file holds whole lines only, and the newest records survive in order.
        var numbers = new List<int>();
        foreach (string file in FlowLogReader.ListFiles(_dir))
        {
            FlowLogReader.ReadFile(file, line =>
            {
                Assert.Equal((byte)'}', line[^1]);
                string text = Encoding.UTF8.GetString(line);
                int at = text.IndexOf("\"n\":", StringComparison.Ordinal) + 4;
                numbers.Add(int.Parse(text[at..text.IndexOf(',', at)], System.Globalization.CultureInfo.InvariantCulture));
            });
        }
        Assert.Equal(199, numbers[^1]);
        Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers);
    }

    [Fact]
    public void Write_TotalSizeLimit_DeletesOldestFiles()
    {
        var options = new FlowLogOptions { MaxFileBytes = 4096, MaxFiles = 100, MaxTotalBytes = 12 * 1024, Compress = false };
        var output = new RotatingFileOutput(Path.Combine(_dir, "flows.log"), options);
        for (int i = 0; i < 300; i++) output.Write(Line(i));
        output.Dispose();
        long total = Directory.GetFiles(_dir).Sum(f => new FileInfo(f).Length);
        Assert.True(total <= 12 * 1024, $"total {total}");
        Assert.True(output.RotatedFiles().Count >= 1);
    }

    [Fact]
    public void Exporter_ReadOnlyDirectory_CountsLostRecordsAndRecovers()
    {
        if (Environment.UserName == "root")
        {
            // root writes through permissions: make the active path a directory instead, which no one can open as a file.
            Directory.CreateDirectory(Path.Combine(_dir, "blocked.log"));
        }
        else
        {
            File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }
        string path = Path.Combine(_dir, "blocked.log");
        var output = new RotatingFileOutput(path, new FlowLogOptions(), TimeProvider.System);
        var exporter = new FlowLogExporter(output);
        exporter.WriteRecord(0, static (w, _) => { w.WriteStartObject(); w.WriteString("time", "2026-11-26T02:00:00.000000Z"); w.WriteEndObject(); });
        exporter.WriteRecord(0, static (w, _) => { w.WriteStartObject(); w.WriteString("time", "2026-11-26T02:00:01.000000Z"); w.WriteEndObject(); });
        exporter.Flush();
        Assert.Equal(2, exporter.RecordsLost);
        Assert.Equal(0, exporter.RecordsWritten);
        Assert.NotNull(exporter.LastError);
        exporter.Dispose();
    }

    [Fact]
    public void Open_FileCutMidLine_TruncatesTheCutLineBeforeAppending()
    {
        string path = Path.Combine(_dir, "tripline-flows.log");
        File.WriteAllText(path, "{\"time\":\"2026-11-26T02:00:00.000000Z\"}\n{\"time\":\"2026-11-2");
        var output = new RotatingFileOutput(path, new FlowLogOptions());
        output.Write("{\"time\":\"2026-11-26T02:00:02.000000Z\"}\n"u8);
        output.Dispose();
        Assert.Equal("{\"time\":\"2026-11-26T02:00:00.000000Z\"}\n{\"time\":\"2026-11-26T02:00:02.000000Z\"}\n", File.ReadAllText(path));
    }

    /// <summary>A writer process killed while writing leaves whole lines and at most one cut last line, which the reader counts.</summary>
    [Fact]
    public async Task Write_ProcessKilledMidWrite_LeavesOnlyTheLastLineCut()
    {
        string path = Path.Combine(_dir, "tripline-flows.log");
        string script = Path.Combine(_dir, "writer.sh");
        // A child writes big batches of lines with single write() calls, like the exporter; SIGKILL stops it anywhere.
        string line = "{\"time\":\"2026-11-26T02:00:00.000000Z\",\"event\":\"start\",\"pad\":\"" + new string('y', 500) + "\"}";
        File.WriteAllText(script, $"#!/bin/sh\nexec python3 -c 'import os\nfd=os.open(\"{path}\",os.O_WRONLY|os.O_CREAT|os.O_APPEND,0o640)\nb=(b\"{line.Replace("\"", "\\\"")}\\n\")*2000\nwhile True: os.write(fd,b)'\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var child = Process.Start(new ProcessStartInfo(script) { UseShellExecute = false })!;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while ((!File.Exists(path) || new FileInfo(path).Length < (8 << 20)) && DateTime.UtcNow < deadline) await Task.Delay(5);
        child.Kill();
        await child.WaitForExitAsync();

        var filter = FlowFilter.All;
        long good = 0, corrupt = 0, index = 0, corruptIndex = -1;
        FlowLogReader.ReadFile(path, l =>
        {
            index++;
            if (filter.Evaluate(l) == FilterResult.Corrupt) { corrupt++; corruptIndex = index; }
            else good++;
        });
        Assert.True(good > 1000);
        Assert.True(corrupt <= 1);
        if (corrupt == 1) Assert.Equal(index, corruptIndex);

        // The agent reopening the file takes the cut line back before it appends.
        var output = new RotatingFileOutput(path, new FlowLogOptions { MaxFileBytes = 1L << 30, MaxTotalBytes = 1L << 31 });
        output.Write(Encoding.UTF8.GetBytes(line + "\n"));
        output.Dispose();
        corrupt = 0;
        FlowLogReader.ReadFile(path, l => { if (filter.Evaluate(l) == FilterResult.Corrupt) corrupt++; });
        Assert.Equal(0, corrupt);
    }

    [Fact]
    public void Reader_GzipAndPlainRotatedFiles_ReadOldestFirst()
    {
        File.WriteAllText(Path.Combine(_dir, "tripline-flows.log"), "{\"n\":3}\n");
        using (var gz = new GZipStream(File.Create(Path.Combine(_dir, "tripline-flows-20261126T010000.000000Z.log.gz")), CompressionLevel.Fastest))
        {
            gz.Write("{\"n\":1}\n"u8);
        }
        File.WriteAllText(Path.Combine(_dir, "tripline-flows-20261126T020000.000000Z.log"), "{\"n\":2}\n");
        File.WriteAllText(Path.Combine(_dir, "tripline-flows-20261126T030000.000000Z.log.gz.tmp"), "partial");
        var seen = new List<string>();
        foreach (string file in FlowLogReader.ListFiles(_dir)) FlowLogReader.ReadFile(file, l => seen.Add(Encoding.UTF8.GetString(l)));
        Assert.Equal(["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"], seen);
    }

    [Fact]
    public void Flush_MaxAge_DeletesRotatedFilesOlderThanTheAgeOnly()
    {
        var clock = new Tripline.Tests.Correlation.Kubernetes.ManualClock(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero));
        var options = new FlowLogOptions { MaxFileBytes = 4096, MaxFiles = 100, MaxTotalBytes = 1 << 30, Compress = false, MaxAge = TimeSpan.FromHours(24) };
        var output = new RotatingFileOutput(Path.Combine(_dir, "tripline-flows.log"), options, clock);
        // Rotations an hour apart for two days: 48 and more rotated files, far under the count and size limits.
        for (int i = 0; i < 49 * 20; i++)
        {
            if (i % 20 == 0) clock.Advance(TimeSpan.FromHours(1));
            output.Write(Line(i));
        }
        var rotated = output.RotatedFiles();
        Assert.True(rotated.Count >= 24, $"{rotated.Count} rotated files");
        Assert.All(rotated, f => Assert.True(output.RotatedAt(f) >= clock.GetUtcNow() - TimeSpan.FromHours(24), f.Name));

        // A quiet node rotates nothing, yet its old files go: the exporter's flushes apply the age limit.
        clock.Advance(TimeSpan.FromHours(12));
        output.Flush();
        var kept = output.RotatedFiles();
        Assert.NotEmpty(kept);
        Assert.True(kept.Count < rotated.Count);
        Assert.All(kept, f => Assert.True(output.RotatedAt(f) >= clock.GetUtcNow() - TimeSpan.FromHours(24), f.Name));
        Assert.Contains(rotated, f => !kept.Any(k => k.Name == f.Name) && output.RotatedAt(f) < clock.GetUtcNow() - TimeSpan.FromHours(24));
        Assert.True(File.Exists(output.ActivePath));
        output.Dispose();
    }

    [Fact]
    public void Write_NoMaxAge_KeepsOldFiles()
    {
        var clock = new Tripline.Tests.Correlation.Kubernetes.ManualClock(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero));
        var output = new RotatingFileOutput(Path.Combine(_dir, "tripline-flows.log"), new FlowLogOptions { MaxFileBytes = 4096, MaxTotalBytes = 1 << 30, Compress = false }, clock);
        for (int i = 0; i < 100; i++) output.Write(Line(i));
        int before = output.RotatedFiles().Count;
        clock.Advance(TimeSpan.FromDays(365));
        output.Flush();
        output.Write(Line(100));
        Assert.Equal(before, output.RotatedFiles().Count);
        output.Dispose();
    }
}
