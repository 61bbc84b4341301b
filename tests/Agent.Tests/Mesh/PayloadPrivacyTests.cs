using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tripline.Tests.Support;

namespace Tripline.Tests.Mesh;

/// <summary>
/// No payload byte leaves the agent (design.md section 10): traffic whose payloads carry a marker made for this run
/// (ASCII in plaintext HTTP, a TLS hello's SNI and random, a crafted record that looks like TLS, random binary, UDP,
/// a connection joined mid-stream) is captured whole (snap length 65535) and replayed by the agent as a process, with
/// <c>replay</c> and with <c>run --pcap</c> at trace level and its HTTP API. The marker, as text, raw bytes, hex and
/// base64, is in none of the flow log, standard output and error, <c>/metrics</c>, <c>/api/v1/flows</c>.
/// </summary>
public sealed class PayloadPrivacyTests : IDisposable
{
    private const string Ns = "vault";
    private const string ClientIp = "10.30.0.10";
    private const string ServerIp = "10.30.0.20";
    private const string OutsiderIp = "10.30.0.30";

    private readonly string _dir = Directory.CreateTempSubdirectory("tripline-privacy-").FullName;
    private readonly string _marker;
    private readonly byte[] _binaryMarker;

    public PayloadPrivacyTests()
    {
        // Fresh each run: nothing in the code or the tests can know it in advance.
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        _marker = "Mk" + RandomNumberGenerator.GetString(Alphabet, 22);
        _binaryMarker = RandomNumberGenerator.GetBytes(20);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private byte[] Ascii => Encoding.ASCII.GetBytes(_marker);

    private string WriteManifests()
    {
        string path = Path.Combine(_dir, "cluster.yaml");
        File.WriteAllText(path, MeshManifests.Namespace(Ns)
            + MeshManifests.Pod(Ns, "client", ClientIp, sidecar: true, "node-a")
            + MeshManifests.Pod(Ns, "server", ServerIp, sidecar: true, "node-a", 8080, 8443, 9000, 9443, 7000, 5353)
            + MeshManifests.Pod(Ns, "outsider", OutsiderIp, sidecar: false, "node-a")
            + MeshManifests.PeerAuthentication(Ns, "default", "STRICT"));
        return path;
    }

    /// <summary>The traffic: every payload kind carries the marker, and the capture keeps every byte.</summary>
    private string WriteCapture()
    {
        string path = Path.Combine(_dir, "traffic.pcap");
        var pcap = new Capture(path);
        byte[] ascii = Ascii;

        // Plaintext HTTP from outside the mesh into STRICT: the marker in the path, a header and the body.
        pcap.Connection(OutsiderIp, 41000, ServerIp, 8080,
            Encoding.ASCII.GetBytes($"GET /statements/{_marker} HTTP/1.1\r\nHost: server\r\nAuthorization: Bearer {_marker}\r\n\r\n"),
            Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {_marker.Length}\r\n\r\n{_marker}"));
        // A TLS handshake: the marker as the SNI host name, the binary marker in the randoms.
        pcap.Connection(ClientIp, 41001, ServerIp, 8443, ClientHello($"{_marker}.vault.svc.cluster.local", _binaryMarker), ServerHello(_binaryMarker));
        // Plaintext between the two meshed pods, the binary marker at an odd offset in random bytes.
        pcap.Connection(ClientIp, 41002, ServerIp, 9000, Embedded(_binaryMarker, 7, 300), Embedded(ascii, 13, 600));
        // Crafted to look like TLS application data (a record header), the marker right after the header.
        pcap.Connection(ClientIp, 41003, ServerIp, 9443, Record(0x17, [.. ascii, .. _binaryMarker]), Record(0x17, [.. _binaryMarker, .. ascii]));
        // Joined mid-stream: no handshake in the capture, the marker in the first payload seen.
        pcap.MidStream(ClientIp, 41004, ServerIp, 7000, Encoding.ASCII.GetBytes($"PUT /{_marker} HTTP/1.1\r\n\r\n"), Embedded(_binaryMarker, 1, 90));
        // UDP both ways.
        pcap.Datagrams(ClientIp, 41005, ServerIp, 5353, Embedded(ascii, 3, 64), Embedded(_binaryMarker, 5, 64));
        pcap.Dispose();

        // The capture does hold the secrets: the agent had every chance to leak them.
        byte[] written = File.ReadAllBytes(path);
        Assert.True(written.AsSpan().IndexOf(ascii) >= 0 && written.AsSpan().IndexOf(_binaryMarker) >= 0);
        return path;
    }

    private const int Connections = 5;

    [Fact]
    public async Task Replay_PayloadsWithAMarker_NoMarkerInTheFlowLogOrTheOutput()
    {
        string manifests = WriteManifests(), pcap = WriteCapture(), log = Path.Combine(_dir, "replay.log");
        var run = await TriplineProcess.RunAsync(["replay", "--pcap", pcap, "--manifests", manifests, "--flow-log", log, "--node", "node-a"]);
        Assert.True(run.ExitCode == 0, run.Output);

        byte[] flowLog = File.ReadAllBytes(log);
        AssertProcessed(flowLog);
        AssertNoMarker("the flow log", flowLog);
        AssertNoMarker("replay's standard output and error", Encoding.UTF8.GetBytes(run.Output));
    }

    [Fact]
    public async Task RunPcap_TraceLogging_NoMarkerInTheFlowLogLogsMetricsOrFlowsApi()
    {
        string manifests = WriteManifests(), pcap = WriteCapture(), log = Path.Combine(_dir, "run.log");
        using var agent = TriplineProcess.Start(["run", "--pcap", pcap, "--manifests", manifests, "--flow-log", log, "--node", "node-a",
            "--listen", "127.0.0.1:0", "--log-level", "trace", "--flow-log-flush-interval", "100ms"]);
        var answers = new List<(string What, byte[] Body)>();
        try
        {
            int port = await agent.ListeningPortAsync(TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            // The capture's flows end at its end of file; wait until every one has its end record.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (TriplineProcess.EndRecords(log) < Connections + 1)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{TriplineProcess.EndRecords(log)} end records after 60 s:\n{agent.Output}");
                await Task.Delay(100);
            }
            foreach (string path in new[] { "/metrics", "/api/v1/flows", "/api/v1/flows?tls=false", "/api/v1/flows?tls=true", $"/api/v1/flows?namespace={Ns}", "/healthz", "/readyz" })
            {
                using var response = await http.GetAsync(path);
                answers.Add((path, await response.Content.ReadAsByteArrayAsync()));
            }
        }
        finally
        {
            Assert.Equal(0, await agent.StopAsync(TimeSpan.FromSeconds(30)));
        }

        string metrics = Encoding.UTF8.GetString(answers[0].Body);
        // The metrics did see the flows: the plaintext into STRICT, and the plaintext between meshed pods.
        Assert.Contains("tripline_plaintext_flows_total{", metrics, StringComparison.Ordinal);
        Assert.Contains("\"tls\":false", Encoding.UTF8.GetString(answers[2].Body), StringComparison.Ordinal);
        Assert.Contains("\"tls\":true", Encoding.UTF8.GetString(answers[3].Body), StringComparison.Ordinal);
        // Trace level did log: the check below reads real log lines.
        Assert.Contains("listening on", agent.Output, StringComparison.Ordinal);

        byte[] flowLog = File.ReadAllBytes(log);
        AssertProcessed(flowLog);
        AssertNoMarker("the flow log", flowLog);
        AssertNoMarker("the agent's standard output and error at trace level", Encoding.UTF8.GetBytes(agent.Output));
        foreach (var (what, body) in answers) AssertNoMarker(what, body);
    }

    /// <summary>The records are there, and the classification happened: the test is not passing on an empty log.</summary>
    private static void AssertProcessed(byte[] flowLog)
    {
        var ends = Encoding.UTF8.GetString(flowLog).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).Where(r => r.GetProperty("event").GetString() == "end").ToList();
        string text = Encoding.UTF8.GetString(flowLog);
        Assert.True(ends.Count == Connections + 1, text);
        bool? Tls(int port) => ends.Single(r => r.GetProperty("dst").GetProperty("port").GetInt32() == port) is var r && r.TryGetProperty("tls", out var t) ? t.GetBoolean() : null;
        Assert.False(Tls(8080));
        Assert.True(Tls(8443));
        Assert.False(Tls(9000));
        Assert.True(Tls(9443));
        Assert.Null(Tls(7000));
        Assert.Null(Tls(5353));
    }

    /// <summary>Fails when any form of either marker is in <paramref name="output"/>.</summary>
    private void AssertNoMarker(string where, byte[] output)
    {
        var forms = new List<(string Form, byte[] Bytes)>
        {
            ("marker", Ascii),
            ("binary marker, raw", _binaryMarker),
        };
        foreach (var (name, secret) in new[] { ("marker", Ascii), ("binary marker", _binaryMarker) })
        {
            forms.Add((name + " as lower-case hex", Encoding.ASCII.GetBytes(Convert.ToHexStringLower(secret))));
            forms.Add((name + " as upper-case hex", Encoding.ASCII.GetBytes(Convert.ToHexString(secret))));
            forms.Add((name + " as dashed hex", Encoding.ASCII.GetBytes(BitConverter.ToString(secret))));
            forms.Add((name + " as colon hex", Encoding.ASCII.GetBytes(BitConverter.ToString(secret).Replace('-', ':').ToLowerInvariant())));
            // Base64 of bytes inside a longer stream depends on where they fall in a 3-byte group: all three alignments,
            // each keeping only the groups that the marker alone decides.
            for (int shift = 0; shift < 3; shift++)
            {
                int groups = (secret.Length - shift) / 3;
                string b64 = Convert.ToBase64String(secret, shift, groups * 3);
                forms.Add((name + $" as base64 (shift {shift})", Encoding.ASCII.GetBytes(b64)));
                forms.Add((name + $" as base64url (shift {shift})", Encoding.ASCII.GetBytes(b64.Replace('+', '-').Replace('/', '_'))));
            }
        }
        foreach (var (form, bytes) in forms)
        {
            int at = output.AsSpan().IndexOf(bytes);
            Assert.True(at < 0, $"{form} found in {where} at byte {at}: ...{Encoding.UTF8.GetString(output, Math.Max(0, at - 80), Math.Min(output.Length - Math.Max(0, at - 80), 200))}...");
        }
    }

    private static byte[] Embedded(byte[] secret, int at, int length)
    {
        byte[] bytes = new byte[length];
        new Random(at * 7919 + length).NextBytes(bytes);
        bytes[0] = 0x00; // not a TLS content type: this is plaintext
        secret.CopyTo(bytes, at);
        return bytes;
    }

    private static byte[] Record(byte contentType, byte[] body)
    {
        byte[] record = new byte[5 + body.Length];
        record[0] = contentType;
        record[1] = 3;
        record[2] = 3;
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(3), (ushort)body.Length);
        body.CopyTo(record, 5);
        return record;
    }

    /// <summary>A ClientHello as a TLS 1.2 or 1.3 client writes it, with one extension: server_name.</summary>
    private static byte[] ClientHello(string serverName, byte[] random)
    {
        byte[] name = Encoding.ASCII.GetBytes(serverName);
        var hello = new List<byte> { 0x03, 0x03 };
        hello.AddRange(random.Take(20));
        hello.AddRange(new byte[12]);
        hello.Add(0); // session id
        hello.AddRange(new byte[] { 0x00, 0x04, 0x13, 0x01, 0xc0, 0x2f }); // cipher suites
        hello.AddRange(new byte[] { 0x01, 0x00 }); // compression: null
        int sniLength = 2 + 1 + 2 + name.Length;
        var extensions = new List<byte> { 0x00, 0x00, (byte)(sniLength >> 8), (byte)sniLength, (byte)((sniLength - 2) >> 8), (byte)(sniLength - 2), 0x00, (byte)(name.Length >> 8), (byte)name.Length };
        extensions.AddRange(name);
        hello.Add((byte)(extensions.Count >> 8));
        hello.Add((byte)extensions.Count);
        hello.AddRange(extensions);
        byte[] handshake = [0x01, 0x00, (byte)(hello.Count >> 8), (byte)hello.Count, .. hello];
        byte[] record = Record(0x16, handshake);
        record[2] = 1; // the record layer says 3.1, as clients send
        return record;
    }

    private static byte[] ServerHello(byte[] random)
    {
        var hello = new List<byte> { 0x03, 0x03 };
        hello.AddRange(random.Take(20));
        hello.AddRange(new byte[12]);
        hello.AddRange(new byte[] { 0x00, 0x13, 0x01, 0x00, 0x00, 0x00 });
        byte[] handshake = [0x02, 0x00, (byte)(hello.Count >> 8), (byte)hello.Count, .. hello];
        return Record(0x16, handshake);
    }

    /// <summary>A classic pcap of Ethernet/IPv4 frames kept whole, with sequence numbers that add up.</summary>
    private sealed class Capture : IDisposable
    {
        private readonly TestPcap _pcap;
        private long _t = 1_764_100_000_000_000;

        public Capture(string path) => _pcap = new TestPcap(File.Create(path));

        public void Connection(string client, ushort clientPort, string server, ushort serverPort, byte[] request, byte[] response)
        {
            uint c = TestPcap.Ip(client), s = TestPcap.Ip(server);
            uint cs = 1000, ss = 5000;
            Tcp(c, clientPort, s, serverPort, 0x02, cs++, 0, []);
            Tcp(s, serverPort, c, clientPort, 0x12, ss++, cs, []);
            Exchange(c, clientPort, s, serverPort, ref cs, ref ss, request, response);
        }

        public void MidStream(string client, ushort clientPort, string server, ushort serverPort, byte[] request, byte[] response)
        {
            uint c = TestPcap.Ip(client), s = TestPcap.Ip(server);
            uint cs = 77_000, ss = 99_000;
            Exchange(c, clientPort, s, serverPort, ref cs, ref ss, request, response);
        }

        public void Datagrams(string client, ushort clientPort, string server, ushort serverPort, byte[] request, byte[] response)
        {
            uint c = TestPcap.Ip(client), s = TestPcap.Ip(server);
            _pcap.Write(_t += 200, [.. TestPcap.Udp(c, clientPort, s, serverPort, request.Length), .. request]);
            _pcap.Write(_t += 200, [.. TestPcap.Udp(s, serverPort, c, clientPort, response.Length), .. response]);
        }

        private void Exchange(uint c, ushort clientPort, uint s, ushort serverPort, ref uint cs, ref uint ss, byte[] request, byte[] response)
        {
            Tcp(c, clientPort, s, serverPort, 0x10, cs, ss, []);
            Tcp(c, clientPort, s, serverPort, 0x18, cs, ss, request);
            cs += (uint)request.Length;
            Tcp(s, serverPort, c, clientPort, 0x18, ss, cs, response);
            ss += (uint)response.Length;
            Tcp(c, clientPort, s, serverPort, 0x11, cs++, ss, []);
            Tcp(s, serverPort, c, clientPort, 0x11, ss++, cs, []);
            Tcp(c, clientPort, s, serverPort, 0x10, cs, ss, []);
        }

        private void Tcp(uint source, ushort sourcePort, uint destination, ushort destinationPort, byte flags, uint seq, uint ack, byte[] payload)
        {
            byte[] frame = [.. TestPcap.Tcp(source, sourcePort, destination, destinationPort, flags, payload.Length), .. payload];
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(38), seq);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(42), ack);
            _pcap.Write(_t += 150, frame);
        }

        public void Dispose() => _pcap.Dispose();
    }
}

/// <summary><c>tripline</c> (the build beside the tests) as a child process, its output lines kept.</summary>
internal sealed class TriplineProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<int> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TriplineProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    private void Line(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
        var match = System.Text.RegularExpressions.Regex.Match(line, @"listening on http://127\.0\.0\.1:(\d+)");
        if (match.Success) _listening.TrySetResult(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public int ExitCode => _process.ExitCode;

    public static TriplineProcess Start(IEnumerable<string> arguments)
    {
        string tripline = Path.Combine(AppContext.BaseDirectory, "tripline.dll");
        Assert.True(File.Exists(tripline), "the agent is not beside the tests: " + tripline);
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var info = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(tripline);
        foreach (string argument in arguments) info.ArgumentList.Add(argument);
        // Nothing from the test runner's environment may configure the agent.
        foreach (string key in info.Environment.Keys.Where(k => k.StartsWith("TRIPLINE_", StringComparison.Ordinal)).ToList()) info.Environment.Remove(key);
        return new TriplineProcess(Process.Start(info)!);
    }

    public static async Task<TriplineProcess> RunAsync(IEnumerable<string> arguments)
    {
        var process = Start(arguments);
        await process._process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        process._process.WaitForExit();
        return process;
    }

    public async Task<int> ListeningPortAsync(TimeSpan timeout)
    {
        var exited = _process.WaitForExitAsync();
        var first = await Task.WhenAny(_listening.Task, exited, Task.Delay(timeout));
        Assert.True(first == _listening.Task, "the agent did not say where it listens:\n" + Output);
        return await _listening.Task;
    }

    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited) Tripline.Tests.EndToEnd.LiveCapture.TestSignals.Kill(_process.Id, Tripline.Tests.EndToEnd.LiveCapture.TestSignals.Term);
        await _process.WaitForExitAsync().WaitAsync(timeout);
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>End records in a flow log that a running agent may be writing.</summary>
    public static int EndRecords(string log)
    {
        if (!File.Exists(log)) return 0;
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        int ends = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line.Contains("\"event\":\"end\"", StringComparison.Ordinal)) ends++;
        }
        return ends;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
