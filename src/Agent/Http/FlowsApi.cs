using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Tripline.Export;
using Tripline.Records;

namespace Tripline.Http;

/// <summary>
/// <c>GET /api/v1/flows</c>: recent flows from the in-memory ring as JSON lines, filtered like <c>tripline flows</c>
/// (namespace, pod, workload, ip, port, protocol, verdict, enforcement, policy, since, until; limit, default 1000).
/// <c>follow=true</c> then keeps the response open and streams each new matching record as it arrives; a follower
/// that falls behind the ring gets a <c>{"event":"lost","records":n}</c> line instead of what it missed.
/// </summary>
internal static class FlowsApi
{
    public const string Path = "/api/v1/flows";
    public const int DefaultLimit = 1000;

    public static void Map(IEndpointRouteBuilder app, RecentFlows ring, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        app.MapGet(Path, (HttpContext http) => ServeAsync(http, ring, time));
    }

    private static async Task ServeAsync(HttpContext http, RecentFlows ring, TimeProvider time)
    {
        var query = http.Request.Query;
        var options = new FlowFilterOptions
        {
            Namespace = query["namespace"],
            Pod = query["pod"],
            Workload = query["workload"],
            Ip = query["ip"],
            Port = query["port"],
            Protocol = query["protocol"],
            Verdict = query["verdict"],
            Enforcement = query["enforcement"],
            Policy = query["policy"],
            Tls = query["tls"],
            Since = query["since"],
            Until = query["until"],
        };
        var problems = new List<string>();
        FlowFilter.TryCreate(options, time.GetUtcNow(), out var filter, out var filterProblems);
        problems.AddRange(filterProblems.Select(p => p.TrimStart('-')));
        int limit = DefaultLimit;
        if (query["limit"] is { Count: > 0 } limitText && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1))
        {
            problems.Add($"limit: '{limitText}' is not a positive number");
        }
        bool follow = false;
        if (query["follow"] is { Count: > 0 } followText && !bool.TryParse(followText, out follow)) problems.Add($"follow: '{followText}' is not true or false");
        if (problems.Count > 0)
        {
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            http.Response.ContentType = "text/plain; charset=utf-8";
            await http.Response.WriteAsync(string.Concat(problems.Select(p => p + "\n")), http.RequestAborted).ConfigureAwait(false);
            return;
        }

        http.Response.ContentType = "application/x-ndjson";
        var body = http.Response.Body;
        var records = ring.Read(0, filter, limit, out long next, out _);
        await WriteAsync(body, records, http.RequestAborted).ConfigureAwait(false);
        if (!follow) return;
        await http.Response.Body.FlushAsync(http.RequestAborted).ConfigureAwait(false);
        // A follower ends with the client or with the agent, whichever goes first.
        var stopping = http.RequestServices.GetService<IHostApplicationLifetime>()?.ApplicationStopping ?? CancellationToken.None;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, stopping);
        var aborted = linked.Token;
        try
        {
            while (!aborted.IsCancellationRequested)
            {
                await ring.WaitAsync(next, aborted).ConfigureAwait(false);
                records = ring.Read(next, filter, int.MaxValue, out next, out long missed);
                if (missed > 0)
                {
                    await body.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"{{\"event\":\"lost\",\"records\":{missed}}}\n"), aborted).ConfigureAwait(false);
                }
                await WriteAsync(body, records, aborted).ConfigureAwait(false);
                await body.FlushAsync(aborted).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client went away, or the agent is stopping.
        }
    }

    private static async Task WriteAsync(Stream body, List<byte[]> records, CancellationToken cancellationToken)
    {
        byte[] newline = "\n"u8.ToArray();
        foreach (byte[] record in records)
        {
            await body.WriteAsync(record, cancellationToken).ConfigureAwait(false);
            await body.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
        }
    }
}
