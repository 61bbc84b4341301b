using System.Diagnostics;
using Tripline.Cli;

namespace Tripline.Tests.Capture;

/// <summary>
/// Every capture of tcpdump's test suite goes through <c>tripline replay</c>: odd link types, broken files and
/// exotic protocols must end in counters or a message naming the file, never in an exception or a hang.
/// </summary>
public sealed class TcpdumpCorpusTests : IDisposable
{
    private static readonly TimeSpan PerFile = TimeSpan.FromSeconds(10);
    private readonly string _manifests = Directory.CreateTempSubdirectory("tripline-corpus-").FullName;

    public TcpdumpCorpusTests()
    {
        File.WriteAllText(Path.Combine(_manifests, "namespace.yaml"), """
            apiVersion: v1
            kind: Namespace
            metadata: { name: default }
            """);
    }

    /// <summary>../shared/data/tcpdump-tests beside the clone (the directory holding Agent.sln).</summary>
    internal static string CorpusDirectory()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Agent.sln"))) dir = dir.Parent;
        if (dir is null) Assert.Fail($"no Agent.sln above {AppContext.BaseDirectory}: cannot find the repository root");
        string corpus = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "tcpdump-tests"));
        if (!Directory.Exists(corpus))
        {
            bool ci = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
            Assert.Fail(ci
                ? $"CI: the tcpdump test corpus is missing at {corpus}; the shared folder must be copied beside the clone"
                : $"the tcpdump test corpus is missing at {corpus}; put tcpdump's tests/*.pcap* there (../shared/data/tcpdump-tests relative to the clone)");
        }
        return corpus;
    }

    [Fact]
    public async Task Replay_EveryTcpdumpTestCapture_EndsWithoutExceptionOrHang()
    {
        string corpus = CorpusDirectory();
        string[] files = Directory.GetFiles(corpus).Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(files);
        var failures = new List<string>();
        int readable = 0, unreadable = 0;
        var total = Stopwatch.StartNew();
        foreach (string file in files)
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var options = new ReplayCommand.ReplayOptions([file], [_manifests], null, "corpus-node", false, 65_536, 60);
            var run = Task.Run(() => ReplayCommand.Run(options, stdout, stderr));
            int code;
            try
            {
                code = await run.WaitAsync(PerFile);
            }
            catch (TimeoutException)
            {
                failures.Add($"{Path.GetFileName(file)}: no result after {PerFile.TotalSeconds} s");
                continue;
            }
            catch (Exception e)
            {
                failures.Add($"{Path.GetFileName(file)}: unhandled {e.GetType().Name}: {e.Message}");
                continue;
            }
            string errors = stderr.ToString();
            if (code == ExitCodes.Success)
            {
                readable++;
            }
            else if (code == ExitCodes.RuntimeFailure && errors.Contains(file, StringComparison.Ordinal))
            {
                unreadable++; // a broken or foreign file: the message names it (and the byte offset)
            }
            else
            {
                failures.Add($"{Path.GetFileName(file)}: exit {code}: {errors.Trim()}");
            }
        }
        total.Stop();
        Assert.True(failures.Count == 0, $"{failures.Count} of {files.Length} files failed:\n" + string.Join('\n', failures.Take(40)));
        Assert.True(readable > files.Length / 2, $"only {readable} of {files.Length} files were readable ({unreadable} reported unreadable)");
        Assert.True(total.Elapsed < TimeSpan.FromSeconds(90), $"the corpus took {total.Elapsed.TotalSeconds:F0} s");
    }

    public void Dispose() => Directory.Delete(_manifests, recursive: true);
}
