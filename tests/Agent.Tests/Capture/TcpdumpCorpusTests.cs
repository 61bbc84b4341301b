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

    /// <summary>The captures of tcpdump's test suite, kept in the repository at tests/data/tcpdump (see its README).</summary>
    internal static string CorpusDirectory()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Agent.sln"))) dir = dir.Parent;
        if (dir is null) Assert.Fail($"no Agent.sln above {AppContext.BaseDirectory}: cannot find the repository root");
        string corpus = Path.Combine(dir.FullName, "tests", "data", "tcpdump");
        Assert.True(Directory.Exists(corpus), $"the tcpdump capture corpus is missing at {corpus}: it is part of the repository");
        return corpus;
    }

    /// <summary>The corpus's captures: every file but its README and LICENSE.</summary>
    internal static string[] CorpusFiles() =>
        [.. Directory.GetFiles(CorpusDirectory()).Where(f => Path.GetFileName(f) is not ("README.md" or "LICENSE")).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task Replay_EveryTcpdumpTestCapture_EndsWithoutExceptionOrHang()
    {
        string[] files = CorpusFiles();
        Assert.Equal(830, files.Length);
        var failures = new List<string>();
        int readable = 0, unreadable = 0;
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
        Assert.True(failures.Count == 0, $"{failures.Count} of {files.Length} files failed:\n" + string.Join('\n', failures.Take(40)));
        Assert.True(readable > files.Length / 2, $"only {readable} of {files.Length} files were readable ({unreadable} reported unreadable)");
    }

    public void Dispose() => Directory.Delete(_manifests, recursive: true);
}
