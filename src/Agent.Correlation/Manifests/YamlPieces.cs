namespace Tripline.Correlation.Manifests;

/// <summary>A whole document, one item of a List, or the List document with its items taken out (<c>items: []</c>).</summary>
internal enum YamlPieceKind : byte
{
    Document,
    Item,
    Shell,
}

/// <summary>A piece of a YAML stream that reads on its own: its lines, and the stream's line of its first.</summary>
internal sealed record YamlPiece(YamlPieceKind Kind, int FirstLine, List<string> Lines);

/// <summary>
/// Cuts a YAML stream into <see cref="YamlPiece"/>s while reading it, by its lines alone: documents end at <c>---</c> or
/// <c>...</c>; a document's top-level <c>items:</c> block is cut at the lines that start an item at the block's
/// indentation, each item handed over as soon as the next begins, and the document around the items comes last. Only
/// one item, or one document that is not a List, is held at a time.
/// </summary>
internal sealed class YamlPieceSplitter(TextReader input)
{
    private int _line;
    private List<string> _doc = [];
    private int _docFirstLine = 1;
    private bool _isCut;
    private bool _inItems;
    private int _itemIndent = -1;
    private List<string> _item = [];
    private int _itemFirstLine;

    public IEnumerable<YamlPiece> Pieces()
    {
        while (input.ReadLine() is { } line)
        {
            _line++;
            if (IsDocumentMarker(line))
            {
                foreach (var piece in EndDocument()) yield return piece;
                _docFirstLine = _line;
                // "--- {kind: ...}" or "--- # note": what follows the marker is the document's first line.
                if (line.Length > 4 && line[0] == '-' && !string.IsNullOrWhiteSpace(line[4..])) _doc.Add(new string(' ', 4) + line[4..]);
                else _docFirstLine = _line + 1;
                continue;
            }
            if (_inItems)
            {
                int indent = Indentation(line);
                if (indent == line.Length || line[indent] == '#')
                {
                    if (_itemIndent >= 0) _item.Add(line);
                    continue;
                }
                bool dash = line[indent] == '-' && (line.Length == indent + 1 || line[indent + 1] == ' ');
                if ((_itemIndent < 0 || indent == _itemIndent) && dash)
                {
                    _itemIndent = indent;
                    foreach (var piece in EndItem()) yield return piece;
                    _itemFirstLine = _line;
                    _item.Add(line);
                    continue;
                }
                if (_itemIndent >= 0 && indent > _itemIndent)
                {
                    _item.Add(line);
                    continue;
                }
                // Back at the document's own level (or "items:" held no block sequence): the items block is over.
                _inItems = false;
                foreach (var piece in EndItem()) yield return piece;
            }
            if (!_isCut && line.StartsWith("items:", StringComparison.Ordinal) && IsBlankOrComment(line.AsSpan(6)))
            {
                _isCut = true;
                _inItems = true;
                _itemIndent = -1;
                _doc.Add("items: []");
                continue;
            }
            _doc.Add(line);
        }
        foreach (var piece in EndDocument()) yield return piece;
    }

    private static bool IsBlankOrComment(ReadOnlySpan<char> rest)
    {
        var trimmed = rest.TrimStart();
        return trimmed.IsEmpty || trimmed[0] == '#';
    }

    private static bool IsDocumentMarker(string line) =>
        line.Length >= 3 && ((line[0] == '-' && line[1] == '-' && line[2] == '-') || (line[0] == '.' && line[1] == '.' && line[2] == '.'))
        && (line.Length == 3 || line[3] is ' ' or '\t');

    private static int Indentation(string line)
    {
        int i = 0;
        while (i < line.Length && line[i] == ' ') i++;
        return i;
    }

    private IEnumerable<YamlPiece> EndItem()
    {
        if (_item.Count == 0) yield break;
        yield return new YamlPiece(YamlPieceKind.Item, _itemFirstLine, _item);
        _item = [];
    }

    private IEnumerable<YamlPiece> EndDocument()
    {
        if (_isCut)
        {
            foreach (var piece in EndItem()) yield return piece;
            yield return new YamlPiece(YamlPieceKind.Shell, _docFirstLine, _doc);
        }
        else if (_doc.Exists(l => !string.IsNullOrWhiteSpace(l) && !l.TrimStart().StartsWith('#')))
        {
            yield return new YamlPiece(YamlPieceKind.Document, _docFirstLine, _doc);
        }
        _doc = [];
        _isCut = false;
        _inItems = false;
    }
}
