using System.Buffers;
using System.Text;
using System.Text.Json;
using CsCheck;
using Tripline.Correlation.Manifests;
using Tripline.Tests.Support;

namespace Tripline.Tests.Correlation.Manifests;

/// <summary>
/// The block reader must read every document exactly as YamlDotNet does, or decline it: on every YAML file of the
/// repository, on the generated cluster, and on generated documents in every style the reader follows (and many it
/// declines), whole and mangled.
/// </summary>
public sealed class BlockYamlTests
{
    /// <summary>The block reader's JSON, or null when it declines.</summary>
    private static string? Block(string text)
    {
        var json = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { SkipValidation = true }))
        {
            if (!BlockYaml.TryWrite(Lines(text), writer)) return null;
        }
        return Encoding.UTF8.GetString(json.WrittenSpan);
    }

    /// <summary>The lines as a reader of the stream gets them (a last newline ends the last line, it does not start another).</summary>
    private static List<string> Lines(string text)
    {
        var lines = new List<string>();
        var reader = new StringReader(text);
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines;
    }

    /// <summary>YamlDotNet's JSON, or null when the text is not valid YAML.</summary>
    private static string? General(string text)
    {
        var json = new ArrayBufferWriter<byte>();
        try
        {
            YamlManifestReader.WriteWithYamlDotNet(text, json);
        }
        catch (YamlDotNet.Core.YamlException)
        {
            return null;
        }
        return Encoding.UTF8.GetString(json.WrittenSpan);
    }

    private static void AssertSameOrDeclined(string text, string where)
    {
        // Pieces are lines, each ending with its newline, also at the end of a file that has none.
        if (!text.EndsWith('\n')) text += "\n";
        string? block = Block(text);
        if (block is null) return;
        string? general = General(text);
        Assert.True(block == general, $"{where}: the block reader read\n{text}\nas\n{block}\nbut YamlDotNet as\n{general ?? "(an error)"}");
    }

    [Fact]
    public void TryWrite_EveryPieceOfEveryYamlFileInTheRepository_ReadsAsYamlDotNetDoes()
    {
        string root = DeployFilesRoot();
        int pieces = 0, read = 0;
        foreach (string file in Directory.EnumerateFiles(root, "*.yaml", SearchOption.AllDirectories).Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && !f.Contains("/.git/")))
        {
            foreach (var piece in new YamlPieceSplitter(new StringReader(File.ReadAllText(file))).Pieces())
            {
                string text = string.Join('\n', piece.Lines) + "\n";
                pieces++;
                if (Block(text) is not null) read++;
                AssertSameOrDeclined(text, $"{Path.GetRelativePath(root, file)}:{piece.FirstLine}");
            }
        }
        Assert.True(pieces > 40 && read > pieces / 4, $"{read} of {pieces} pieces read by the block reader");
    }

    [Fact]
    public void TryWrite_GeneratedClusterAsKubectlWritesIt_ReadsEveryObjectAsYamlDotNetDoes()
    {
        var cluster = new GeneratedCluster(pods: 200, policies: 80, namespaces: 10, nodes: 3);
        var text = new StringWriter();
        cluster.WriteYamlList(text);
        int items = 0;
        foreach (var piece in new YamlPieceSplitter(new StringReader(text.ToString())).Pieces())
        {
            string yaml = string.Join('\n', piece.Lines) + "\n";
            Assert.NotNull(Block(yaml));
            AssertSameOrDeclined(yaml, $"line {piece.FirstLine}");
            if (piece.Kind == YamlPieceKind.Item) items++;
        }
        Assert.Equal(10 + 3 + 200 + 80, items);
    }

    private static readonly string[] Scalars =
    [
        "web", "8080", "-1", "1.5", "1.10", "true", "False", "yes", "off", "null", "~", "", "a b", "http://x:1/y", "-dash", "a#b", "007", "1e3", "0x1F",
        "with: colon", "trailing:", "ünïcödé", "back\\slash", "quote\"d", "it's", "multi\nline", "  spaced  ", "*star", "&amp", "!bang", "%pct", "@at", "[x]", "{y}",
        "a, b", "? q", ": c", "#hash", "tab\there", "end ", "2026-11-26T02:00:00Z", "=", "<<",
    ];

    private static readonly string[] Keys = ["app", "name", "kubernetes.io/metadata.name", "a b", "8080", "true", "", "with: colon", "x#y", "-k", "k-", "\"q\""];

    /// <summary>A tree of mappings, sequences and scalars, written as block YAML in a style drawn for each node.</summary>
    private static readonly Gen<string> Documents = Gen.Int[0, int.MaxValue].Select(seed =>
    {
        var random = new Random(seed);
        var text = new StringBuilder();
        WriteMapping(text, random, 0, 3);
        return text.ToString();
    });

    private static void WriteMapping(StringBuilder text, Random random, int indent, int depth, bool firstInline = false)
    {
        int entries = random.Next(1, 5);
        for (int i = 0; i < entries; i++)
        {
            if (!(firstInline && i == 0)) text.Append(' ', indent);
            if (random.Next(12) == 0) text.Append("# a comment\n").Append(' ', indent);
            text.Append(Key(random)).Append(':');
            WriteValue(text, random, indent, depth);
            if (random.Next(15) == 0) text.Append('\n');
        }
    }

    private static string Key(Random random)
    {
        string key = Keys[random.Next(Keys.Length)];
        return random.Next(4) switch
        {
            0 => "\"" + key.Replace("\"", "\\\"", StringComparison.Ordinal) + "\"",
            1 => "'" + key.Replace("'", "''", StringComparison.Ordinal) + "'",
            _ => key,
        };
    }

    private static void WriteValue(StringBuilder text, Random random, int indent, int depth)
    {
        int kind = depth <= 0 ? 0 : random.Next(6);
        switch (kind)
        {
            case 1:
                text.Append('\n');
                WriteMapping(text, random, indent + 2, depth - 1);
                return;
            case 2 or 3:
                {
                    text.Append('\n');
                    // Indentless (as kubectl writes it) or indented.
                    int at = kind == 2 ? indent : indent + 2;
                    int items = random.Next(1, 4);
                    for (int i = 0; i < items; i++)
                    {
                        text.Append(' ', at).Append('-');
                        if (depth > 1 && random.Next(2) == 0)
                        {
                            text.Append(' ');
                            WriteMapping(text, random, at + 2, depth - 1, firstInline: true);
                        }
                        else
                        {
                            WriteValue(text, random, at, 0);
                        }
                    }
                    return;
                }
            case 4:
                text.Append(random.Next(2) == 0 ? " {}\n" : " []\n");
                return;
            default:
                text.Append(' ').Append(Scalar(random, indent)).Append(random.Next(10) == 0 ? "  # note\n" : "\n");
                return;
        }
    }

    private static string Scalar(Random random, int indent)
    {
        string value = Scalars[random.Next(Scalars.Length)];
        switch (random.Next(5))
        {
            case 0:
                return "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
            case 1:
                return "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal) + "\"";
            case 2:
                {
                    string pad = new(' ', indent + 2);
                    string chomp = random.Next(3) switch { 0 => "", 1 => "-", _ => "+" };
                    return "|" + chomp + "\n" + string.Join("\n", value.Split('\n').Select(l => pad + l)) + (random.Next(3) == 0 ? "\n" : "");
                }
            default:
                return value;
        }
    }

    [Fact]
    public void TryWrite_GeneratedDocuments_ReadAsYamlDotNetDoesOrDeclined()
    {
        int read = 0, total = 0;
        Documents.Sample(text =>
        {
            total++;
            if (Block(text) is not null) Interlocked.Increment(ref read);
            AssertSameOrDeclined(text, "generated");
        }, iter: Iterations(20_000), threads: 1);
        Assert.True(read > total / 10, $"the block reader read only {read} of {total} generated documents");
    }

    [Fact]
    public void TryWrite_GeneratedDocumentsMangled_ReadAsYamlDotNetDoesOrDeclined()
    {
        var mangled = Documents.SelectMany(text => Gen.Int[0, Math.Max(0, text.Length - 1)].SelectMany(at => Gen.Int[0, 4].Select(how => how switch
        {
            0 => text.Remove(at, 1),
            1 => text.Insert(at, " "),
            2 => text.Insert(at, "\n"),
            3 => text[..at],
            _ => text.Insert(at, "- "),
        })));
        mangled.Sample(text => AssertSameOrDeclined(text, "mangled"), iter: Iterations(30_000), threads: 1);
    }

    /// <summary>The suite's count, or more when BLOCKYAML_ITERATIONS asks (a long search for a disagreement).</summary>
    private static long Iterations(long suite) => long.TryParse(Environment.GetEnvironmentVariable("BLOCKYAML_ITERATIONS"), out long n) ? n : suite;

    private static string DeployFilesRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Agent.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Agent.sln not found above the tests");
    }
}
