using System.CommandLine;
using Microsoft.Extensions.Logging;
using Tripline.Capture.Flows;
using Tripline.Hosting;

namespace Tripline.Cli;

/// <summary><c>tripline run</c>: the agent.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var kubeconfig = EnvironmentDefaults.String("--kubeconfig", "kubeconfig file; in-cluster configuration when absent");
        var manifests = EnvironmentDefaults.List("--manifests", "read cluster state from manifest files instead of the API");
        var interfaces = EnvironmentDefaults.List("--interfaces", "interface name globs to capture on (default: the common CNI veths)");
        var pcap = EnvironmentDefaults.List("--pcap", "read packets from capture files instead of live interfaces ('-' for standard input)");
        var node = EnvironmentDefaults.Node();
        var flowLog = EnvironmentDefaults.String("--flow-log", "flow log file, or '-' for standard output");
        var listen = EnvironmentDefaults.String("--listen", "address of /metrics, /healthz, /readyz and the flow API", ":9090");
        var logLevel = EnvironmentDefaults.String("--log-level", "trace, debug, information, warning or error", "information");

        var command = new Command("run", "Run the agent: capture, judge, and serve metrics, health and recent flows.")
        {
            kubeconfig, manifests, interfaces, pcap, node, flowLog, listen, logLevel,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new AgentOptions
            {
                Kubeconfig = parse.GetValue(kubeconfig),
                Manifests = parse.GetValue(manifests) ?? [],
                Interfaces = parse.GetValue(interfaces) ?? [],
                Pcaps = parse.GetValue(pcap) ?? [],
                Node = parse.GetValue(node) ?? Environment.MachineName,
                FlowLog = parse.GetValue(flowLog),
                Listen = parse.GetValue(listen) ?? ":9090",
                FlowTable = new FlowTableOptions(),
            };
            if (!Enum.TryParse<LogLevel>(parse.GetValue(logLevel), ignoreCase: true, out var level))
            {
                await Console.Error.WriteLineAsync($"tripline run: --log-level: '{parse.GetValue(logLevel)}' is not a log level").ConfigureAwait(false);
                return ExitCodes.BadUsage;
            }
            return await RunAsync(options, level, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    internal static async Task<int> RunAsync(AgentOptions options, LogLevel level, CancellationToken cancellationToken)
    {
        var problems = options.Validate().ToList();
        if (problems.Count > 0)
        {
            foreach (string problem in problems) await Console.Error.WriteLineAsync("tripline run: " + problem).ConfigureAwait(false);
            return ExitCodes.BadUsage;
        }
        using var loggerFactory = LoggerFactory.Create(logging => logging
            .SetMinimumLevel(level)
            .AddSimpleConsole(console => { console.SingleLine = true; console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; console.UseUtcTimestamp = true; })
            .AddFilter("Microsoft", LogLevel.Warning));
        // Logs go to standard error: standard output may carry the flow log.
        var parts = AgentFactory.Create(options, loggerFactory, problems);
        if (problems.Count > 0)
        {
            foreach (string problem in problems) await Console.Error.WriteLineAsync("tripline run: " + problem).ConfigureAwait(false);
            return ExitCodes.BadUsage;
        }
        await using var host = new AgentHost(options, loggerFactory, parts);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        try
        {
            await host.RunAsync(stop.Token).ConfigureAwait(false);
        }
        catch (IOException e) when (e.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"tripline run: --listen: {e.Message}").ConfigureAwait(false);
            return ExitCodes.BadUsage;
        }
        return ExitCodes.Success;
    }
}
