using System.CommandLine;
using Microsoft.Extensions.Logging;
using Tripline.Capture.Flows;
using Tripline.Capture.Live;
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
        var listen = EnvironmentDefaults.String("--listen", "address of /metrics, /healthz, /readyz and the flow API (default :9090; 127.0.0.1:9090 with --manifests)");
        var staged = EnvironmentDefaults.List("--staged", "staged policy documents (files or directories, watched for changes): every flow is judged with them applied as well");
        var httpAuth = EnvironmentDefaults.String("--http-auth", "kubernetes (TLS, bearer tokens reviewed by the API server) or none (default: kubernetes with state from the API, none with --manifests)");
        var tlsCert = EnvironmentDefaults.String("--tls-cert-file", "PEM certificate of the listener, read again when it changes (default: self-signed at start-up, logged by fingerprint)");
        var tlsKey = EnvironmentDefaults.String("--tls-private-key-file", "PEM private key of --tls-cert-file");
        var authCacheTtl = EnvironmentDefaults.String("--http-auth-cache-ttl", "how long an authenticated token and an allowed path are trusted without asking the API server", "2m");
        var authDenyCacheTtl = EnvironmentDefaults.String("--http-auth-deny-cache-ttl", "how long a refused token or a denied path stays refused without asking the API server", "10s");
        var authTimeout = EnvironmentDefaults.String("--http-auth-timeout", "longest wait for the API server's review; past it the request gets 503", "5s");
        var logLevel = EnvironmentDefaults.String("--log-level", "trace, debug, information, warning or error", "information");
        var snaplen = EnvironmentDefaults.String("--snaplen", "bytes captured of each packet (headers only)", "128");
        var bpfFilter = EnvironmentDefaults.String("--bpf-filter", "BPF filter (pcap-filter syntax) applied in the kernel on every captured interface");
        var kernelBuffer = EnvironmentDefaults.String("--kernel-buffer", "kernel capture buffer per interface, bytes (suffixes k, m)", "4m");
        var anyDevice = EnvironmentDefaults.Flag("--any-device", "capture on libpcap's 'any' device (one socket) and keep the interfaces matching --interfaces");
        var udpIdle = EnvironmentDefaults.String("--udp-idle-timeout", "a UDP flow with no packet for this long ends with end_reason idle (e.g. 60s)", "60s");
        var tcpIdle = EnvironmentDefaults.String("--tcp-idle-timeout", "a TCP flow with no packet for this long ends with end_reason idle (e.g. 5m)", "5m");
        var flushInterval = EnvironmentDefaults.String("--flow-log-flush-interval", "longest a flow-log record waits in memory before it is written (what a crash can cost)", "500ms");
        var attributionWait = EnvironmentDefaults.String("--attribution-wait", "with state from the API, how long a flow from an address in a pod range that no known pod holds waits for the pod to appear", "5s");
        var shutdownTimeout = EnvironmentDefaults.String("--shutdown-timeout", "longest a stop (SIGTERM) may take; past it the agent writes what it holds and exits 1", "10s");

        var command = new Command("run", "Run the agent: capture, judge, and serve metrics, health and recent flows.")
        {
            kubeconfig, manifests, interfaces, pcap, node, flowLog, listen, logLevel,
            snaplen, bpfFilter, kernelBuffer, anyDevice, udpIdle, tcpIdle, flushInterval, shutdownTimeout, attributionWait,
            httpAuth, tlsCert, tlsKey, authCacheTtl, authDenyCacheTtl, authTimeout, staged,
        };
        var export = new Tripline.Export.ExportOptionSet();
        export.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var bad = new List<string>();
            int snap = ParseSize(parse.GetValue(snaplen), "--snaplen", bad);
            int buffer = ParseSize(parse.GetValue(kernelBuffer), "--kernel-buffer", bad);
            TimeSpan udpIdleTimeout = ParseDuration(parse.GetValue(udpIdle), "--udp-idle-timeout", bad);
            TimeSpan tcpIdleTimeout = ParseDuration(parse.GetValue(tcpIdle), "--tcp-idle-timeout", bad);
            TimeSpan flush = ParseDuration(parse.GetValue(flushInterval), "--flow-log-flush-interval", bad);
            TimeSpan shutdown = ParseDuration(parse.GetValue(shutdownTimeout), "--shutdown-timeout", bad);
            TimeSpan attribution = ParseDuration(parse.GetValue(attributionWait), "--attribution-wait", bad);
            var (metricsOptions, recentFlows, flowLogOptions) = export.Bind(parse, bad);
            Tripline.Http.Auth.HttpAuthMode? Bad(string problem)
            {
                bad.Add(problem);
                return null;
            }
            Tripline.Http.Auth.HttpAuthMode? authMode = parse.GetValue(httpAuth)?.Trim().ToLowerInvariant() switch
            {
                null or "" => null,
                "kubernetes" => Tripline.Http.Auth.HttpAuthMode.Kubernetes,
                "none" => Tripline.Http.Auth.HttpAuthMode.None,
                var other => Bad($"--http-auth: '{other}' is not kubernetes or none"),
            };
            var http = new Tripline.Http.Auth.HttpAuthOptions
            {
                Mode = authMode,
                TlsCertFile = parse.GetValue(tlsCert) is { Length: > 0 } certFile ? certFile : null,
                TlsPrivateKeyFile = parse.GetValue(tlsKey) is { Length: > 0 } keyFile ? keyFile : null,
                CacheTtl = ParseDuration(parse.GetValue(authCacheTtl), "--http-auth-cache-ttl", bad),
                DenyCacheTtl = ParseDuration(parse.GetValue(authDenyCacheTtl), "--http-auth-deny-cache-ttl", bad),
                ReviewTimeout = ParseDuration(parse.GetValue(authTimeout), "--http-auth-timeout", bad),
            };
            var manifestList = parse.GetValue(manifests) ?? [];
            foreach (string problem in bad) await Console.Error.WriteLineAsync("tripline run: " + problem).ConfigureAwait(false);
            if (bad.Count > 0) return ExitCodes.BadUsage;
            var options = new AgentOptions
            {
                Kubeconfig = parse.GetValue(kubeconfig),
                Manifests = manifestList,
                Interfaces = parse.GetValue(interfaces) ?? [],
                Pcaps = parse.GetValue(pcap) ?? [],
                Node = parse.GetValue(node) ?? Environment.MachineName,
                FlowLog = parse.GetValue(flowLog),
                // With manifests nothing can review a token: by default only this host may ask.
                Listen = parse.GetValue(listen) is { Length: > 0 } address ? address : manifestList.Length > 0 ? "127.0.0.1:9090" : ":9090",
                Http = http,
                Staged = parse.GetValue(staged) ?? [],
                FlowTable = new FlowTableOptions { UdpIdleTimeout = udpIdleTimeout, TcpIdleTimeout = tcpIdleTimeout },
                Metrics = metricsOptions,
                RecentFlows = recentFlows,
                FlowLogOptions = flowLogOptions,
                FlushInterval = flush,
                ShutdownTimeout = shutdown,
                AttributionWait = attribution,
                LiveCapture = new LiveCaptureOptions
                {
                    SnapLength = snap,
                    KernelBufferBytes = buffer,
                    BpfFilter = parse.GetValue(bpfFilter) is { Length: > 0 } filter ? filter : null,
                    UseAnyDevice = parse.GetValue(anyDevice),
                },
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

    /// <summary>"128", "64k", "4m": bytes.</summary>
    internal static int ParseSize(string? text, string option, List<string> problems)
    {
        string t = (text ?? "").Trim().ToLowerInvariant();
        long scale = t.EndsWith('k') ? 1 << 10 : t.EndsWith('m') ? 1 << 20 : 1;
        if (scale > 1) t = t[..^1];
        if (long.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) && n * scale <= int.MaxValue) return (int)(n * scale);
        problems.Add($"{option}: '{text}' is not a size (for example 128, 64k, 4m)");
        return 0;
    }

    /// <summary>"500ms", "2s", "5m", "1h", or a TimeSpan ("00:00:02").</summary>
    internal static TimeSpan ParseDuration(string? text, string option, List<string> problems)
    {
        string t = (text ?? "").Trim().ToLowerInvariant();
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        (string suffix, double seconds)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, seconds) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(t[..^suffix.Length], System.Globalization.NumberStyles.AllowDecimalPoint, culture, out double n))
            {
                return TimeSpan.FromSeconds(n * seconds);
            }
        }
        if (TimeSpan.TryParse(t, culture, out var span)) return span;
        problems.Add($"{option}: '{text}' is not a duration (for example 500ms, 2s, 5m)");
        return TimeSpan.Zero;
    }

    internal static async Task<int> RunAsync(AgentOptions options, LogLevel level, CancellationToken cancellationToken)
    {
        var problems = options.Validate().ToList();
        if (problems.Count > 0)
        {
            foreach (string problem in problems) await Console.Error.WriteLineAsync("tripline run: " + problem).ConfigureAwait(false);
            return ExitCodes.BadUsage;
        }
        // From the first moment: a SIGTERM while manifests load or the API is dialled is a stop like any other.
        using var signal = new StopSignal(cancellationToken);
        using var loggerFactory = LoggerFactory.Create(logging => logging
            .SetMinimumLevel(level)
            .AddSimpleConsole(console => { console.SingleLine = true; console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; console.UseUtcTimestamp = true; })
            .AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddFilter("Microsoft", LogLevel.Warning));
        using var deadline = new StopDeadline(signal, options.ShutdownTimeout, loggerFactory);
        // From here a SIGTERM is the agent's to handle (before, the runtime's default ends the process with nothing to lose).
        loggerFactory.CreateLogger("tripline").LogInformation("starting (pid {Pid}, node {Node})", Environment.ProcessId, options.Node);
        // Logs go to standard error: standard output may carry the flow log.
        var parts = AgentFactory.Create(options, loggerFactory, problems);
        if (problems.Count > 0)
        {
            foreach (string problem in problems) await Console.Error.WriteLineAsync("tripline run: " + problem).ConfigureAwait(false);
            return ExitCodes.BadUsage;
        }
        var host = new AgentHost(options, loggerFactory, parts);
        deadline.Watch(host);
        int exitCode = ExitCodes.Success;
        try
        {
            await host.RunAsync(signal.Token).ConfigureAwait(false);
        }
        catch (IOException e) when (e.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"tripline run: --listen: {e.Message}").ConfigureAwait(false);
            exitCode = ExitCodes.BadUsage;
        }
        finally
        {
            await host.StopAsync(signal.Reason ?? "ended", () => signal.SinceRequested).ConfigureAwait(false);
            deadline.Stopped();
        }
        return exitCode;
    }
}
