using System.Buffers;

namespace Tripline.Correlation.Manifests;

/// <summary>
/// Reads JSON manifests (<c>kubectl get -o json</c>: one object, usually a List of thousands of items) as a stream of
/// bytes, never as a whole document: a small scanner follows strings and nesting, hands each item of the top-level
/// <c>items</c> array over as soon as it closes, and keeps of the List itself only its other fields. Memory is bounded
/// by the largest single object. Several top-level values in one file, and a top-level array of objects, are read too.
/// </summary>
internal static class JsonManifestReader
{
    private const int ChunkSize = 64 * 1024;

    public static void Read(Stream input, IManifestObjectSink sink)
    {
        var scanner = new Scanner(sink);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            int n;
            while ((n = input.Read(chunk, 0, ChunkSize)) > 0) scanner.Scan(chunk.AsSpan(0, n));
            scanner.End();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private sealed class Scanner(IManifestObjectSink sink)
    {
        private readonly ArrayBufferWriter<byte> _top = new(4096);
        private readonly ArrayBufferWriter<byte> _item = new(16 * 1024);
        private readonly ArrayBufferWriter<byte> _string = new(64);
        private int _depth;
        private bool _inString;
        private bool _escape;
        private int _line = 1;
        // The top-level value: an object (a List or one object) or an array of objects.
        private bool _topIsArray;
        private int _topLine;
        // Inside the top-level object's "items" array, and where its items sit.
        private bool _inItems;
        private int _itemsDepth;
        private int _itemLine;
        private bool _inItem;
        private bool _hadItems;
        // The last string seen at the top object's own level, and whether the next value belongs to "items".
        private bool _stringAtTop;
        private bool _keyIsItems;
        private bool _expectItemsValue;
        private bool _failed;

        public void Scan(ReadOnlySpan<byte> data)
        {
            if (_failed) return;
            // Where, in this chunk, the bytes bound for the top object and for the current item start.
            int topFrom = _depth > 0 && !_inItems ? 0 : -1;
            int itemFrom = _inItem ? 0 : -1;
            for (int i = 0; i < data.Length; i++)
            {
                byte c = data[i];
                if (_inString)
                {
                    if (_escape)
                    {
                        _escape = false;
                        if (_stringAtTop) _string.Write([c]);
                        continue;
                    }
                    // Jump to the next quote, backslash or newline: strings are most of a manifest.
                    int next = data[i..].IndexOfAny((byte)'"', (byte)'\\', (byte)'\n');
                    if (next < 0)
                    {
                        if (_stringAtTop) _string.Write(data[i..]);
                        i = data.Length - 1;
                        continue;
                    }
                    if (_stringAtTop && next > 0) _string.Write(data.Slice(i, next));
                    i += next;
                    c = data[i];
                    if (c == '\\') _escape = true;
                    else if (c == '"') _inString = false;
                    else _line++;
                    continue;
                }
                switch (c)
                {
                    case (byte)'"':
                        _inString = true;
                        _stringAtTop = _depth == 1 && !_topIsArray;
                        if (_stringAtTop) _string.ResetWrittenCount();
                        break;
                    case (byte)'\n':
                        _line++;
                        break;
                    case (byte)':':
                        if (_depth == 1 && !_topIsArray)
                        {
                            _keyIsItems = _string.WrittenSpan.SequenceEqual("items"u8);
                            _expectItemsValue = _keyIsItems;
                        }
                        break;
                    case (byte)',':
                        if (_depth == 1) _expectItemsValue = false;
                        break;
                    case (byte)'{':
                    case (byte)'[':
                        if (_depth == 0)
                        {
                            _topIsArray = c == '[';
                            _topLine = _line;
                            _top.ResetWrittenCount();
                            _hadItems = false;
                            if (_topIsArray)
                            {
                                _inItems = true;
                                _itemsDepth = 1;
                            }
                            else topFrom = i;
                        }
                        else if (_depth == 1 && _expectItemsValue && c == '[')
                        {
                            // The List's items: the top object keeps "[]", the items go out one by one.
                            _expectItemsValue = false;
                            _inItems = true;
                            _hadItems = true;
                            _itemsDepth = 2;
                            _top.Write(data[topFrom..(i + 1)]);
                            topFrom = -1;
                        }
                        else if (_inItems && _depth == _itemsDepth && c == '{')
                        {
                            _inItem = true;
                            _itemLine = _line;
                            _item.ResetWrittenCount();
                            itemFrom = i;
                        }
                        else if (_depth == 1) _expectItemsValue = false;
                        _depth++;
                        break;
                    case (byte)'}':
                    case (byte)']':
                        _depth--;
                        if (_depth < 0)
                        {
                            Fail("unbalanced brackets");
                            return;
                        }
                        if (_inItem && _depth == _itemsDepth)
                        {
                            _item.Write(data[itemFrom..(i + 1)]);
                            itemFrom = -1;
                            _inItem = false;
                            sink.Object(_item.WrittenSpan, _itemLine, inList: true);
                        }
                        else if (_inItems && _depth == _itemsDepth - 1)
                        {
                            _inItems = false;
                            if (_topIsArray)
                            {
                                sink.EndDocument(isList: true);
                                continue;
                            }
                            topFrom = i;
                        }
                        if (_depth == 0 && !_topIsArray)
                        {
                            _top.Write(data[topFrom..(i + 1)]);
                            topFrom = -1;
                            bool isList = IsList(_top.WrittenSpan);
                            sink.EndDocument(isList);
                            if (!isList || !_hadItems) sink.Object(_top.WrittenSpan, _topLine, inList: false);
                        }
                        break;
                    default:
                        if (_depth == 1 && c is not ((byte)' ' or (byte)'\t' or (byte)'\r')) _expectItemsValue = false;
                        break;
                }
            }
            if (topFrom >= 0) _top.Write(data[topFrom..]);
            if (itemFrom >= 0) _item.Write(data[itemFrom..]);
        }

        public void End()
        {
            if (_failed) return;
            if (_depth != 0 || _inString) Fail("the file ends inside a value");
        }

        private void Fail(string why)
        {
            _failed = true;
            sink.Error(_line, "not valid JSON: " + why);
            sink.EndDocument(isList: false);
        }

        private static bool IsList(ReadOnlySpan<byte> json)
        {
            try
            {
                var reader = new System.Text.Json.Utf8JsonReader(json);
                if (!reader.Read() || reader.TokenType != System.Text.Json.JsonTokenType.StartObject) return false;
                while (reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.PropertyName)
                {
                    bool kind = reader.ValueTextEquals("kind"u8);
                    reader.Read();
                    if (kind) return reader.TokenType == System.Text.Json.JsonTokenType.String && reader.ValueSpan.EndsWith("List"u8);
                    reader.Skip();
                }
            }
            catch (System.Text.Json.JsonException)
            {
                // Not valid JSON: reported when the object itself is read.
            }
            return false;
        }
    }
}
