using System.CommandLine;
using System.Globalization;
using Tripline.Cli;
using Tripline.Records;

namespace Tripline.Export;

/// <summary>The <c>run</c> options of the metrics, the recent-flows ring and the flow-log files, each also from <c>TRIPLINE_*</c>.</summary>
internal sealed class ExportOptionSet
{
    private readonly Option<string?> _maxSeries = EnvironmentDefaults.String("--metrics-max-series", "most label sets per flow counter; the excess is counted under 'other'", "2000");
    private readonly Option<string?> _seriesTtl = EnvironmentDefaults.String("--metrics-series-ttl", "remove series of deleted namespaces/workloads idle this long (e.g. 1h)", "1h");
    private readonly Option<string?> _recentFlows = EnvironmentDefaults.String("--recent-flows", "flow records kept in memory for /api/v1/flows", "10000");
    private readonly Option<string?> _maxSize = EnvironmentDefaults.String("--flow-log-max-size", "rotate the flow-log file at this size (e.g. 100M)", "100M");
    private readonly Option<string?> _maxFiles = EnvironmentDefaults.String("--flow-log-max-files", "rotated flow-log files kept", "20");
    private readonly Option<string?> _maxTotal = EnvironmentDefaults.String("--flow-log-max-total", "bytes kept in all flow-log files together (e.g. 2G)", "2G");
    private readonly Option<string?> _compress = EnvironmentDefaults.String("--flow-log-compress", "gzip rotated flow-log files (true or false)", "true");
    private readonly Option<bool> _deniedOnly = EnvironmentDefaults.Flag("--flow-log-denied-only", "write only denied flows to the flow log");
    private readonly Option<string?> _events = EnvironmentDefaults.String("--flow-log-events", "which records to write: all, or start-end (no updates)", "all");
    private readonly Option<string?> _aggregate = EnvironmentDefaults.String("--flow-log-aggregate", "fold flows shorter than this interval into one aggregate record per peer pair and interval (e.g. 10s)");
    private readonly Option<string?> _rateLimit = RateLimitOption();
    private readonly Option<string?> _rateBurst = RateBurstOption();
    private readonly Option<string?> _maxAge = EnvironmentDefaults.String("--flow-log-max-age", "delete rotated flow-log files older than this (e.g. 7d, 72h); none by default");

    /// <summary>Shared with <c>replay</c>, where the default is no limit: a replay's file has no retention to protect.</summary>
    public static Option<string?> RateLimitOption(string fallback = "500") => EnvironmentDefaults.String("--flow-log-rate-limit",
        "flow-log records per second (packet time) before flows are folded into aggregates; denied flows and new peer pairs first; 0 for no limit", fallback);

    public static Option<string?> RateBurstOption() => EnvironmentDefaults.String("--flow-log-rate-burst", "flow-log records the rate limit lets through at once", "2000");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _maxSeries, _seriesTtl, _recentFlows, _maxSize, _maxFiles, _maxTotal, _compress, _deniedOnly, _events, _aggregate, _rateLimit, _rateBurst, _maxAge }) command.Options.Add(option);
    }

    /// <summary>Binds the parsed values; every bad value is a problem naming its option.</summary>
    public (MetricsOptions Metrics, int RecentFlows, FlowLogOptions FlowLog) Bind(ParseResult parse, List<string> problems)
    {
        int maxSeries = Integer(parse, _maxSeries, problems);
        var ttl = Duration(parse, _seriesTtl, problems) ?? TimeSpan.FromHours(1);
        int recent = Integer(parse, _recentFlows, problems);
        long maxSize = Size(parse, _maxSize, problems);
        int maxFiles = Integer(parse, _maxFiles, problems);
        long maxTotal = Size(parse, _maxTotal, problems);
        bool compress = true;
        if (parse.GetValue(_compress) is { } compressText && !bool.TryParse(compressText, out compress)) problems.Add($"--flow-log-compress: '{compressText}' is not true or false");
        string events = parse.GetValue(_events) ?? "all";
        if (events is not ("all" or "start-end")) problems.Add($"--flow-log-events: '{events}' is not all or start-end");
        var aggregate = Duration(parse, _aggregate, problems);
        var (rate, burst) = Rate(parse, _rateLimit, _rateBurst, problems);
        var maxAge = Duration(parse, _maxAge, problems);
        return (
            new MetricsOptions { MaxSeries = maxSeries, SeriesTtl = ttl },
            recent,
            new FlowLogOptions
            {
                MaxFileBytes = maxSize,
                MaxFiles = maxFiles,
                MaxTotalBytes = maxTotal,
                Compress = compress,
                DeniedOnly = parse.GetValue(_deniedOnly),
                StartsAndEndsOnly = events == "start-end",
                Aggregate = aggregate,
                RateLimit = rate,
                RateBurst = burst,
                MaxAge = maxAge,
            });
    }

    /// <summary>The rate limit and its burst: whole numbers, a rate of 0 for no limit.</summary>
    public static (double Rate, int Burst) Rate(ParseResult parse, Option<string?> rate, Option<string?> burst, List<string> problems)
    {
        int limit = Integer(parse, rate, problems);
        int size = Integer(parse, burst, problems);
        return (limit, size);
    }

    private static int Integer(ParseResult parse, Option<string?> option, List<string> problems)
    {
        string? text = parse.GetValue(option);
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value)) return value;
        problems.Add($"{option.Name}: '{text}' is not a whole number");
        return 0;
    }

    private static long Size(ParseResult parse, Option<string?> option, List<string> problems)
    {
        string? text = parse.GetValue(option);
        if (text is not null && FlowLogOptions.TryParseSize(text, out long value)) return value;
        problems.Add($"{option.Name}: '{text}' is not a size (e.g. 100M, 2G)");
        return 0;
    }

    private static TimeSpan? Duration(ParseResult parse, Option<string?> option, List<string> problems)
    {
        string? text = parse.GetValue(option);
        if (string.IsNullOrEmpty(text)) return null;
        if (FlowFilter.TryParseDuration(text, out var value)) return value;
        problems.Add($"{option.Name}: '{text}' is not a duration (e.g. 10s, 5m, 1h)");
        return null;
    }
}
