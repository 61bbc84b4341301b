using System.Buffers;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Tripline.Correlation.Manifests;

/// <summary>Receives the objects a manifest reader finds, one at a time, as JSON valid only during the call.</summary>
internal interface IManifestObjectSink
{
    /// <summary>A top-level document, or an item of a <c>List</c> (<paramref name="inList"/>): its JSON and the line it starts on.</summary>
    void Object(ReadOnlySpan<byte> json, int line, bool inList);

    /// <summary>A part of the file that is not a manifest object (bad YAML, a document that is not a mapping).</summary>
    void Error(int line, string message);

    /// <summary>
    /// The document whose items were reported with <c>inList</c> ended: they belong to it only when it is a List
    /// (<paramref name="isList"/>); otherwise they were fields of some other object and are forgotten.
    /// </summary>
    void EndDocument(bool isList);
}

/// <summary>
/// Reads multi-document YAML as a stream of lines, never as a whole tree: a document's top-level <c>items:</c> block
/// (what <c>kubectl get -o yaml</c> writes: 50,000 pods in one List) is cut between its items as the lines come
/// (<see cref="YamlPieceSplitter"/>), and every document, every item and the List around them is written as JSON on its
/// own and handed over, so memory is bounded by the largest single object, not by the file. Each piece is read by
/// <see cref="BlockYaml"/> (the block YAML kubectl writes, several times faster) or, when it holds anything else, by
/// YamlDotNet's parser; so bad YAML costs only its document or item, and its error names the line.
/// </summary>
internal static class YamlManifestReader
{
    public static void Read(TextReader text, IManifestObjectSink sink)
    {
        var json = new ArrayBufferWriter<byte>(16 * 1024);
        foreach (var piece in new YamlPieceSplitter(text).Pieces())
        {
            json.ResetWrittenCount();
            if (!TryConvert(piece, json, sink))
            {
                if (piece.Kind != YamlPieceKind.Item) sink.EndDocument(isList: false);
                continue;
            }
            var written = json.WrittenSpan;
            switch (piece.Kind)
            {
                case YamlPieceKind.Item:
                    // One item, written as a one-element sequence: "[" + the object + "]".
                    if (written.Length > 2 && written[0] == '[') sink.Object(written[1..^1], piece.FirstLine, inList: true);
                    break;
                case YamlPieceKind.Shell:
                    EndDocument(written, piece.FirstLine, itemsCut: true, sink);
                    break;
                default:
                    EndDocument(written, piece.FirstLine, itemsCut: false, sink);
                    break;
            }
        }
    }

    /// <summary>The piece as JSON: the block reader first, YamlDotNet when it declines; false (error reported) when neither can.</summary>
    private static bool TryConvert(YamlPiece piece, ArrayBufferWriter<byte> json, IManifestObjectSink sink)
    {
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { SkipValidation = true }))
        {
            if (BlockYaml.TryWrite(piece.Lines, writer)) return true;
        }
        json.ResetWrittenCount();
        try
        {
            WriteWithYamlDotNet(string.Join('\n', piece.Lines) + "\n", json);
            return true;
        }
        catch (YamlException e)
        {
            sink.Error(piece.FirstLine + (int)Math.Max(0, e.Start.Line - 1), "not valid YAML or JSON: " + e.Message);
            return false;
        }
    }

    /// <summary>A document as JSON by YamlDotNet's parser (the general reader, and the oracle <see cref="BlockYaml"/> is tested against).</summary>
    internal static void WriteWithYamlDotNet(string text, IBufferWriter<byte> json)
    {
        var parser = new Parser(new StringReader(text));
        parser.MoveNext(); // StreamStart
        using var writer = new Utf8JsonWriter(json, new JsonWriterOptions { SkipValidation = true });
        if (!parser.MoveNext() || parser.Current is not DocumentStart)
        {
            writer.WriteNullValue();
            return;
        }
        parser.MoveNext();
        WriteNode(parser, writer, new Dictionary<string, byte[]>(StringComparer.Ordinal));
        writer.Flush();
        // A second document in the same text is more than one piece: the splitter never makes that.
        parser.MoveNext();
        if (parser.MoveNext() && parser.Current is DocumentStart) throw new YamlException(parser.Current.Start, parser.Current.End, "more than one document");
    }

    /// <summary>
    /// A whole document, or the List around items already handed over: a List commits its items and is not an object
    /// itself; anything else is one object. A small List whose items were not cut out (flow style) hands them over here.
    /// </summary>
    private static void EndDocument(ReadOnlySpan<byte> json, int line, bool itemsCut, IManifestObjectSink sink)
    {
        if (json.IsEmpty || json[0] != '{')
        {
            // An empty document (only comments, or "---" alone) is nothing; anything else that is not a mapping is an error.
            if (!json.SequenceEqual("null"u8)) sink.Error(line, "a manifest document must be a mapping with apiVersion and kind");
            sink.EndDocument(isList: false);
            return;
        }
        bool isList = IsList(json);
        bool hadItems = itemsCut;
        if (!itemsCut && isList)
        {
            var reader = new Utf8JsonReader(json);
            reader.Read();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool items = reader.ValueTextEquals("items"u8);
                reader.Read();
                if (items && reader.TokenType == JsonTokenType.StartArray)
                {
                    hadItems = true;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        long start = reader.TokenStartIndex;
                        reader.Skip();
                        sink.Object(json[(int)start..(int)(reader.BytesConsumed)], line, inList: true);
                    }
                }
                else reader.Skip();
            }
        }
        sink.EndDocument(isList);
        if (!isList || !hadItems) sink.Object(json, line, inList: false);
    }

    /// <summary>A document whose kind ends in List (PodList, List): its items are the objects.</summary>
    private static bool IsList(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool kind = reader.ValueTextEquals("kind"u8);
            reader.Read();
            if (kind) return reader.TokenType == JsonTokenType.String && reader.ValueSpan.EndsWith("List"u8);
            reader.Skip();
        }
        return false;
    }

    /// <summary>The current event as a mapping key (a scalar; anything else is written as its text), and moves past nothing.</summary>
    private static string KeyText(Parser parser) => parser.Current switch
    {
        Scalar scalar => scalar.Value,
        _ => throw new YamlException(parser.Current!.Start, parser.Current.End, "a mapping key must be a plain value"),
    };

    /// <summary>Writes the node starting at the current event as JSON and moves past it.</summary>
    private static void WriteNode(Parser parser, Utf8JsonWriter writer, Dictionary<string, byte[]> anchors)
    {
        var current = parser.Current!;
        if (current is AnchorAlias alias)
        {
            if (!anchors.TryGetValue(alias.Value.Value, out var json)) throw new YamlException(alias.Start, alias.End, $"unknown alias *{alias.Value.Value}");
            writer.WriteRawValue(json, skipInputValidation: true);
            parser.MoveNext();
            return;
        }
        if (current is NodeEvent { Anchor.IsEmpty: false } anchored)
        {
            // An anchored node is kept as JSON so that its aliases can be written the same (rare in manifests).
            var buffer = new ArrayBufferWriter<byte>(256);
            using (var inner = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
            {
                WriteUnanchored(parser, inner, anchors);
            }
            anchors[anchored.Anchor.Value] = buffer.WrittenSpan.ToArray();
            writer.WriteRawValue(buffer.WrittenSpan, skipInputValidation: true);
            return;
        }
        WriteUnanchored(parser, writer, anchors);
    }

    private static void WriteUnanchored(Parser parser, Utf8JsonWriter writer, Dictionary<string, byte[]> anchors)
    {
        switch (parser.Current)
        {
            case Scalar scalar:
                YamlJson.WriteScalar(writer, scalar.Value, scalar.Style, scalar.Tag.IsEmpty ? null : scalar.Tag.Value);
                parser.MoveNext();
                return;
            case MappingStart:
                writer.WriteStartObject();
                parser.MoveNext();
                while (parser.Current is not MappingEnd)
                {
                    writer.WritePropertyName(KeyText(parser));
                    parser.MoveNext();
                    WriteNode(parser, writer, anchors);
                }
                writer.WriteEndObject();
                parser.MoveNext();
                return;
            case SequenceStart:
                writer.WriteStartArray();
                parser.MoveNext();
                while (parser.Current is not SequenceEnd) WriteNode(parser, writer, anchors);
                writer.WriteEndArray();
                parser.MoveNext();
                return;
            default:
                throw new YamlException(parser.Current!.Start, parser.Current.End, $"unexpected {parser.Current.GetType().Name}");
        }
    }

    private static void SkipNode(Parser parser)
    {
        int depth = 0;
        do
        {
            depth += parser.Current switch
            {
                MappingStart or SequenceStart => 1,
                MappingEnd or SequenceEnd => -1,
                _ => 0,
            };
            parser.MoveNext();
        }
        while (depth > 0);
    }
}

