using BenchmarkDotNet.Running;

namespace Tripline.Benchmarks;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "sync-scale") return ClusterSyncScale.RunAsync(args[1..]).GetAwaiter().GetResult();
        if (args.Length > 0 && args[0] == "manifest-gen") return ManifestScale.Generate(args[1..]);
        if (args.Length > 0 && args[0] == "manifest-load") return ManifestScale.Load(args[1..]);
        if (args.Length > 0 && args[0] == "api-sync") return ManifestScale.ApiSyncAsync(args[1..]).GetAwaiter().GetResult();
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
