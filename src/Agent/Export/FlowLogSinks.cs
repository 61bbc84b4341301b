namespace Tripline.Export;

/// <summary>Builds the agent's flow-log exporter from <c>--flow-log</c> and its options.</summary>
internal static class FlowLogSinks
{
    /// <summary>
    /// '-' is standard output for log shippers; a directory gets rotated files inside it; a file path is the active
    /// file with rotated files beside it. Returns null with a problem naming the option when it cannot be written.
    /// </summary>
    public static IFlowExporter? Create(string path, FlowLogOptions options, List<string> problems, TimeProvider? time = null)
    {
        IFlowLogOutput output;
        try
        {
            if (path == "-")
            {
                output = new StreamFlowLogOutput(Tripline.Cli.StandardStreams.OpenOutput(), ownsStream: true);
            }
            else
            {
                string active = RotatingFileOutput.ResolveActivePath(path);
                if (Path.GetDirectoryName(Path.GetFullPath(active)) is { } directory && !Directory.Exists(directory))
                {
                    problems.Add($"--flow-log: directory does not exist: {directory}");
                    return null;
                }
                var files = new RotatingFileOutput(active, options, time);
                // Created now: it exists from the start, and a directory the agent cannot write to is a configuration error.
                files.Open();
                output = files;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"--flow-log: cannot write {path}: {e.Message}");
            return null;
        }
        var exporter = new FlowLogExporter(output, options.Filter);
        return AggregatingFlowLog.Wrap(exporter, options);
    }
}
