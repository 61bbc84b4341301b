using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Tripline.Correlation.Manifests;
using Tripline.TrafficGen;

return GeneratorCommand.Invoke(args);

namespace Tripline.TrafficGen
{
    /// <summary><c>tripline-trafficgen</c>: writes a realistic capture for a set of manifests.</summary>
    internal static class GeneratorCommand
    {
        public static int Invoke(string[] args)
        {
            var manifests = new Option<string[]>("--manifests") { Description = "manifest files or directories: the pods, Services and nodes to draw traffic between (none: a synthetic cluster)", AllowMultipleArgumentsPerToken = true, Arity = ArgumentArity.ZeroOrMore };
            var output = new Option<string>("--out") { Description = "capture file to write, or '-' for standard output", Required = true };
            var flows = new Option<int>("--flows") { Description = "flows to generate without a plan", DefaultValueFactory = _ => 1000 };
            var packetsPerFlow = new Option<int>("--packets-per-flow") { Description = "average packets per flow", DefaultValueFactory = _ => 20 };
            var seed = new Option<ulong>("--seed") { Description = "random seed: the same seed, options and manifests write the same bytes", DefaultValueFactory = _ => 1 };
            var snaplen = new Option<int>("--snaplen") { Description = "bytes kept of each frame, as a node agent captures (the original length is kept)", DefaultValueFactory = _ => 128 };
            var start = new Option<string>("--start") { Description = "time of the first flow (RFC 3339, UTC by default)", DefaultValueFactory = _ => "2025-06-02T09:30:00Z" };
            var plan = new Option<string?>("--plan") { Description = "YAML/JSON list of connections to generate instead of random pairs" };
            var format = new Option<string>("--format") { Description = "pcap or pcapng", DefaultValueFactory = _ => "pcap" };
            format.AcceptOnlyFromAmong("pcap", "pcapng");
            var nanoseconds = new Option<bool>("--nanoseconds") { Description = "nanosecond time stamps (default microseconds)" };
            var noise = new Option<double>("--noise") { Description = "share of extra frames that are noise: ARP, neighbour discovery, LLDP, malformed", DefaultValueFactory = _ => 0.002 };
            var flowRate = new Option<double>("--flow-rate") { Description = "new flows per second of capture time", DefaultValueFactory = _ => 200 };

            var root = new RootCommand("Writes realistic pcap/pcapng traffic (TCP, DNS, ICMP, noise) between the pods and Services of a set of manifests.")
            {
                manifests, output, flows, packetsPerFlow, seed, snaplen, start, plan, format, nanoseconds, noise, flowRate,
            };
            root.SetAction(parse =>
            {
                string startText = parse.GetValue(start)!;
                if (!DateTimeOffset.TryParse(startText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var startTime))
                {
                    Console.Error.WriteLine($"tripline-trafficgen: --start: not a time: {startText}");
                    return 2;
                }
                var options = new GeneratorOptions
                {
                    Manifests = parse.GetValue(manifests) ?? [],
                    Output = parse.GetValue(output)!,
                    Flows = parse.GetValue(flows),
                    PacketsPerFlow = parse.GetValue(packetsPerFlow),
                    Seed = parse.GetValue(seed),
                    SnapLength = parse.GetValue(snaplen),
                    StartNs = (startTime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100,
                    PlanPath = parse.GetValue(plan),
                    Format = parse.GetValue(format) == "pcapng" ? CaptureFormat.Pcapng : CaptureFormat.Pcap,
                    Nanoseconds = parse.GetValue(nanoseconds),
                    Noise = parse.GetValue(noise),
                    FlowRate = parse.GetValue(flowRate),
                };
                return Run(options, Console.Error);
            });
            var result = root.Parse(args);
            if (result.Errors.Count > 0)
            {
                foreach (var error in result.Errors) Console.Error.WriteLine("tripline-trafficgen: " + error.Message);
                return 2;
            }
            return result.Invoke();
        }

        public static int Run(GeneratorOptions options, TextWriter log)
        {
            var problems = options.Validate().ToList();
            if (problems.Count > 0)
            {
                foreach (string problem in problems) log.WriteLine("tripline-trafficgen: " + problem);
                return 2;
            }

            Topology topology;
            if (options.Manifests.Count > 0)
            {
                var loaded = ManifestLoader.Load(options.Manifests);
                foreach (var error in loaded.Errors) log.WriteLine("tripline-trafficgen: manifest error: " + error);
                topology = Topology.FromSnapshot(loaded.Snapshot);
            }
            else
            {
                topology = Topology.Synthetic();
            }

            var rng = new Rng(options.Seed);
            List<FlowSpec> specs;
            if (options.PlanPath is { } planPath)
            {
                var errors = new List<string>();
                var plan = TrafficPlan.Load(planPath, errors);
                specs = errors.Count == 0 ? FlowPlanner.FromPlan(plan, topology, options, rng, errors) : [];
                if (errors.Count > 0)
                {
                    foreach (string error in errors) log.WriteLine("tripline-trafficgen: " + error);
                    return 2;
                }
            }
            else
            {
                try
                {
                    specs = FlowPlanner.Random(topology, options, rng);
                }
                catch (InvalidOperationException e)
                {
                    log.WriteLine("tripline-trafficgen: " + e.Message);
                    return 2;
                }
            }

            var stopwatch = Stopwatch.StartNew();
            Stream stream;
            try
            {
                stream = options.Output == "-"
                    ? Console.OpenStandardOutput()
                    : new FileStream(options.Output, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DirectoryNotFoundException)
            {
                log.WriteLine($"tripline-trafficgen: --out: cannot write {options.Output}: {e.Message}");
                return 2;
            }
            using (var writer = CaptureWriter.Create(options.Format, stream, ownsStream: options.Output != "-", options.SnapLength, options.Nanoseconds))
            {
                var generator = new TrafficGenerator(topology, specs, writer, options.Seed, options.Noise);
                generator.Run();
                writer.Flush();
                stopwatch.Stop();
                double seconds = stopwatch.Elapsed.TotalSeconds;
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"tripline-trafficgen: wrote {writer.Packets:N0} packets ({specs.Count:N0} flows, {generator.FlowPackets:N0} flow packets, {generator.NoiseFrames:N0} noise frames), {writer.BytesWritten / (1024.0 * 1024.0):F1} MiB to {options.Output} in {seconds:F1} s ({writer.Packets / Math.Max(seconds, 1e-9) / 1e6:F2} M packets/s)"));
            }
            return 0;
        }
    }
}
