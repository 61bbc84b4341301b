using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tripline.Cli;
using Tripline.Report;
using Tripline.Tests.Deploy;

namespace Tripline.Tests.Report;

/// <summary>
/// The report as a person reads it: rendered by headless Chromium (Debian's <c>chromium</c>), checked from its DOM
/// (sections, the map's nodes and edges against the workload pairs of the log, no script, nothing fetched) and its
/// screenshot (a page of the expected size, drawn in many colours, the map's allowed and denied colours among them),
/// with no console message.
/// </summary>
public sealed partial class ChromiumTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private const int Width = 1280;
    private const int Height = 4000;
    private readonly ReportInputs _inputs = new();

    public void Dispose() => _inputs.Dispose();

    private static string Chromium()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Append("/usr/bin"))
        {
            string path = Path.Combine(dir, "chromium");
            if (File.Exists(path)) return path;
        }
        string ci = Environment.GetEnvironmentVariable("CI") == "true" ? " (CI=true: .ci/run must install it)" : "";
        Assert.Fail($"chromium not found on PATH{ci}: install Debian's 'chromium' package (apt-get install chromium; scripts/ensure-deps.sh test)");
        return "";
    }

    private sealed record Rendered(string Dom, string Stderr, byte[] Png);

    /// <summary>Renders a file twice, headless, each run with its own profile: the DOM after load, and a screenshot.</summary>
    private Rendered Render(string html)
    {
        string chromium = Chromium();
        string png = Path.Combine(_inputs.Directory, Path.GetFileNameWithoutExtension(html) + ".png");
        var dom = Run(chromium, ["--dump-dom", new Uri(html).AbsoluteUri]);
        var shot = Run(chromium, ["--hide-scrollbars", $"--screenshot={png}", $"--window-size={Width},{Height}", new Uri(html).AbsoluteUri]);
        Assert.True(File.Exists(png), "no screenshot written\n" + shot.Stderr);
        return new Rendered(dom.Stdout, dom.Stderr + shot.Stderr, File.ReadAllBytes(png));
    }

    private (string Stdout, string Stderr) Run(string chromium, string[] args)
    {
        string profile = Directory.CreateTempSubdirectory("tripline-chromium-").FullName;
        try
        {
            var start = new ProcessStartInfo(chromium)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string arg in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0", $"--user-data-dir={profile}", .. args])
            {
                start.ArgumentList.Add(arg);
            }
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Timeout))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail("chromium did not finish within " + Timeout);
            }
            Assert.True(process.ExitCode == 0, $"chromium exited {process.ExitCode}\n{stderr.Result}");
            return (stdout.Result, stderr.Result);
        }
        finally
        {
            Directory.Delete(profile, recursive: true);
        }
    }

    /// <summary>What the page said on its console (Chromium logs each message as a CONSOLE line): errors, and any fetch the page's policy refused.</summary>
    private static List<string> ConsoleMessages(string stderr) =>
        [.. stderr.Split('\n').Where(l => l.Contains(":CONSOLE", StringComparison.Ordinal) || l.Contains("Uncaught", StringComparison.Ordinal))];

    private string WriteReport(string log, IReadOnlyList<string> manifests, string name)
    {
        string html = Path.Combine(_inputs.Directory, name + ".html");
        var stderr = new StringWriter();
        Assert.True(ReportCommand.Run(new ReportCommand.ReportOptions { FlowLogs = [log], Manifests = manifests, Out = html }, stderr) == 0, stderr.ToString());
        return html;
    }

    [Fact]
    public void Chromium_HandWrittenReport_SectionsAndMapMatchTheLog_NoConsoleErrors_ScreenshotDrawn()
    {
        string log = _inputs.WriteLog();
        var rendered = Render(WriteReport(log, [_inputs.Manifests], "hand"));

        Assert.Empty(ConsoleMessages(rendered.Stderr));
        foreach (string id in new[] { "coverage", "posture", "exposure", "violations", "mesh", "map" })
        {
            Assert.Matches($"<section id=\"{id}\">\\s*<h2>", rendered.Dom);
        }
        Assert.DoesNotContain("<script", rendered.Dom, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", rendered.Dom);

        // The map: one node per workload (or the outside) and one edge per observed pair, by verdict, counted from the log here.
        var pairs = ReportInputs.EndRecords(log)
            .GroupBy(e => (ReportInputs.MapId(e.GetProperty("src")), ReportInputs.MapId(e.GetProperty("dst"))))
            .ToDictionary(g => g.Key, g => g.Select(e => e.GetProperty("verdict").GetString()).Distinct().Count() == 2 ? "both" : g.First().GetProperty("verdict").GetString() == "allow" ? "allowed" : "denied");
        var nodes = NodeIds().Matches(rendered.Dom).Select(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(pairs.Keys.SelectMany(k => new[] { k.Item1, k.Item2 }).Distinct().Order(StringComparer.Ordinal), nodes);
        var edges = Edges().Matches(rendered.Dom).ToDictionary(m => (m.Groups[2].Value, m.Groups[3].Value), m => m.Groups[1].Value);
        Assert.Equal(pairs.OrderBy(p => p.Key), edges.OrderBy(e => e.Key));
        Assert.Contains("denied", edges.Values);
        Assert.Contains("allowed", edges.Values);

        var image = Png.Decode(rendered.Png);
        Assert.Equal(Width, image.Width);
        Assert.Equal(Height, image.Height);
        Assert.True(image.DistinctColours() >= 16, $"{image.DistinctColours()} colours: the page looks blank");
        Assert.True(image.Has(0xc6, 0x28, 0x28), "no pixel of the denied colour (the map's denied edges, the findings in red)");
        Assert.True(image.Has(0x2e, 0x7d, 0x32), "no pixel of the allowed colour (the map's allowed edges)");
    }

    [Fact]
    public void Chromium_DemoReport_RendersEverySectionWithoutConsoleErrors()
    {
        string log = Path.Combine(_inputs.Directory, "demo.log");
        Assert.Equal(0, ReplayCommand.Run(new ReplayCommand.ReplayOptions([DeployFiles.Path("deploy/demo/traffic.pcap")], [DeployFiles.Path("deploy/demo")], log, "demo-node-1", false, 65_536, 60),
            new StringWriter(), new StringWriter()));
        string html = WriteReport(log, [DeployFiles.Path("deploy/demo")], "demo");
        var rendered = Render(html);
        Assert.Empty(ConsoleMessages(rendered.Stderr));
        foreach (string id in new[] { "coverage", "posture", "exposure", "violations", "mesh", "map" }) Assert.Contains($"<section id=\"{id}\">", rendered.Dom, StringComparison.Ordinal);
        Assert.Contains("not_enforced", rendered.Dom, StringComparison.Ordinal);
        Assert.True(Png.Decode(rendered.Png).DistinctColours() >= 16);
    }

    /// <summary>The checks above can fail: a page with a script error is caught, and a blank page is seen as blank.</summary>
    [Fact]
    public void Chromium_PageWithAnErrorAndABlankPage_AreCaught()
    {
        string bad = Path.Combine(_inputs.Directory, "bad.html");
        File.WriteAllText(bad, "<!DOCTYPE html><html><body><p>x</p><script>console.error('boom'); missingFunction();</script></body></html>");
        var rendered = Render(bad);
        Assert.Contains(ConsoleMessages(rendered.Stderr), l => l.Contains("boom", StringComparison.Ordinal));
        Assert.Contains(ConsoleMessages(rendered.Stderr), l => l.Contains("Uncaught ReferenceError", StringComparison.Ordinal));
        string blank = Path.Combine(_inputs.Directory, "blank.html");
        File.WriteAllText(blank, "<!DOCTYPE html><html><body></body></html>");
        Assert.True(Png.Decode(Render(blank).Png).DistinctColours() < 16);
    }

    [GeneratedRegex("<g class=\"map-node\" data-id=\"([^\"]*)\"")]
    private static partial Regex NodeIds();

    [GeneratedRegex("<path class=\"map-edge (allowed|denied|both)\" data-src=\"([^\"]*)\" data-dst=\"([^\"]*)\"")]
    private static partial Regex Edges();
}

/// <summary>Just enough of PNG to read a screenshot (8-bit RGB or RGBA, not interlaced): its size and pixels.</summary>
internal sealed class Png
{
    public int Width { get; private init; }
    public int Height { get; private init; }
    private byte[] _pixels = [];
    private int _channels;

    public static Png Decode(byte[] file)
    {
        Assert.True(file.AsSpan(0, 8).SequenceEqual((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a]), "not a PNG");
        int width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        for (int at = 8; at + 8 <= file.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(file, at + 4, 4);
            var data = file.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]);
                channels = data[9] switch { 2 => 3, 6 => 4, _ => throw new InvalidDataException($"colour type {data[9]}") };
                Assert.Equal(0, data[12]);
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }
            else if (type == "IEND")
            {
                break;
            }
            at += 12 + length;
        }
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var zlib = new ZLibStream(idat, CompressionMode.Decompress)) zlib.CopyTo(inflated);
        var raw = inflated.GetBuffer();
        int stride = width * channels;
        var pixels = new byte[stride * height];
        for (int y = 0; y < height; y++)
        {
            byte filter = raw[y * (stride + 1)];
            var line = raw.AsSpan(y * (stride + 1) + 1, stride);
            var output = pixels.AsSpan(y * stride, stride);
            var previous = y == 0 ? new byte[stride] : pixels.AsSpan((y - 1) * stride, stride);
            for (int x = 0; x < stride; x++)
            {
                int a = x >= channels ? output[x - channels] : 0, b = previous[x], c = x >= channels ? previous[x - channels] : 0;
                output[x] = (byte)(line[x] + filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"filter {filter}"),
                });
            }
        }
        return new Png { Width = width, Height = height, _pixels = pixels, _channels = channels };
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    public int DistinctColours()
    {
        var colours = new HashSet<int>();
        for (int i = 0; i + 2 < _pixels.Length; i += _channels) colours.Add(_pixels[i] << 16 | _pixels[i + 1] << 8 | _pixels[i + 2]);
        return colours.Count;
    }

    /// <summary>Whether some pixel is this colour, give or take a little (colour management may shift a value by a few).</summary>
    public bool Has(byte r, byte g, byte b)
    {
        for (int i = 0; i + 2 < _pixels.Length; i += _channels)
        {
            if (Math.Abs(_pixels[i] - r) <= 6 && Math.Abs(_pixels[i + 1] - g) <= 6 && Math.Abs(_pixels[i + 2] - b) <= 6) return true;
        }
        return false;
    }
}
