using Microsoft.Extensions.Logging.Abstractions;
using Tripline.Hosting;
using Tripline.Tests.Export;

namespace Tripline.Tests.Http;

/// <summary>An agent run in-process on loopback, replaying the demo capture against the demo manifests.</summary>
internal sealed class AgentUnderTest : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly Task _run;

    private AgentUnderTest(AgentHost host, CancellationTokenSource stop, Task run)
    {
        Host = host;
        _stop = stop;
        _run = run;
    }

    public AgentHost Host { get; }
    public HttpClient Client { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };
    public Uri BaseAddress => Host.ListenAddress!;

    public static async Task<AgentUnderTest> StartAsync(DemoTraffic demo, Func<AgentOptions, AgentOptions>? configure = null)
    {
        var options = new AgentOptions
        {
            Manifests = [demo.Manifests],
            Pcaps = [demo.Pcap],
            Node = DemoTraffic.Node,
            Listen = "127.0.0.1:0",
        };
        if (configure is not null) options = configure(options);
        var problems = new List<string>();
        var parts = AgentFactory.Create(options, NullLoggerFactory.Instance, problems);
        Assert.Empty(problems);
        var host = new AgentHost(options, NullLoggerFactory.Instance, parts);
        var stop = new CancellationTokenSource();
        var run = Task.Run(() => host.RunAsync(stop.Token));
        var agent = new AgentUnderTest(host, stop, run);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!(host.ListenAddress is not null && host.Pipeline.SourceFinished))
        {
            if (run.IsFaulted) await run;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("agent did not finish replaying the demo capture in 30 s");
            await Task.Delay(20);
        }
        return agent;
    }

    public Task<string> GetAsync(string path) => Client.GetStringAsync(new Uri(BaseAddress, path));

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _run.WaitAsync(TimeSpan.FromSeconds(30));
        await Host.DisposeAsync();
        Client.Dispose();
        _stop.Dispose();
    }
}
