using System.Text;
using System.Text.Json;

namespace Tripline.Correlation.Manifests;

/// <summary>
/// The block YAML that <c>kubectl get -o yaml</c> and people write, read straight into JSON: block mappings and
/// sequences (indentless sequences under a key included), plain, single- and double-quoted scalars on one line,
/// literal block scalars (<c>|</c>, <c>|-</c>, <c>|+</c>), empty flow collections, comments. YamlDotNet's general
/// parser spends most of a large load making events and marks; this reads the same documents several times faster.
/// Anything else (anchors, aliases, tags, folded or multi-line scalars, flow collections with content, tabs, complex
/// keys) is declined (<see cref="TryWrite"/> returns false) and the caller reads the object with YamlDotNet, so the
/// result never depends on which reader read it: a property test holds the two equal on every fixture and on
/// generated and mangled documents.
/// </summary>
internal static class BlockYaml
{
    /// <summary>Writes the node the lines hold as JSON; false (the writer's output then unusable) when they hold anything outside the block subset.</summary>
    public static bool TryWrite(IReadOnlyList<string> lines, Utf8JsonWriter writer)
    {
        var reader = new Reader(lines);
        try
        {
            reader.SkipBlank();
            if (reader.AtEnd)
            {
                writer.WriteNullValue();
                return true;
            }
            int indent = reader.Indent;
            if (!reader.WriteNode(writer, indent)) return false;
            reader.SkipBlank();
            // Anything left over (a line less indented than the root, say) is more than this reader follows.
            return reader.AtEnd;
        }
        catch (Unsupported)
        {
            return false;
        }
    }

    private sealed class Unsupported : Exception
    {
    }

    /// <summary>Lines with a cursor; a line can be re-based (<c>- key: value</c> is read as a mapping at the dash's indentation plus two).</summary>
    private sealed class Reader(IReadOnlyList<string> lines)
    {
        private int _index;
        // The current line as re-based: its text from _column on counts as indented by _indent.
        private int _column;
        private int _indent = -1;

        public bool AtEnd => _index >= lines.Count;

        public int Indent
        {
            get
            {
                if (_indent < 0) Measure();
                return _indent;
            }
        }

        private string Line => lines[_index];

        private ReadOnlySpan<char> Content
        {
            get
            {
                if (_indent < 0) Measure();
                return Line.AsSpan(_column);
            }
        }

        private void Measure()
        {
            string line = Line;
            int i = 0;
            while (i < line.Length && line[i] == ' ') i++;
            if (i < line.Length && line[i] == '\t') throw new Unsupported();
            _column = i;
            _indent = i;
        }

        private void Next()
        {
            _index++;
            _indent = -1;
        }

        /// <summary>Skips blank lines and whole-line comments.</summary>
        public void SkipBlank()
        {
            while (!AtEnd)
            {
                var content = Content;
                if (content.IsEmpty || content[0] == '#' || content.IsWhiteSpace()) { Next(); continue; }
                return;
            }
        }

        /// <summary>The node starting at the current line, which is indented by <paramref name="indent"/>.</summary>
        public bool WriteNode(Utf8JsonWriter writer, int indent)
        {
            var content = Content;
            if (IsDash(content)) return WriteSequence(writer, indent);
            if (FindKey(content, out _) >= 0) return WriteMapping(writer, indent);
            // A bare scalar as a node of its own (the root, or a sequence item on its own line).
            WriteValue(writer, content, indent);
            return true;
        }

        private static bool IsDash(ReadOnlySpan<char> content) => content.Length > 0 && content[0] == '-' && (content.Length == 1 || content[1] == ' ');

        private bool WriteSequence(Utf8JsonWriter writer, int indent)
        {
            writer.WriteStartArray();
            while (true)
            {
                SkipBlank();
                if (AtEnd || Indent != indent || !IsDash(Content)) break;
                var content = Content;
                var rest = content.Length > 1 ? content[2..] : [];
                int spaces = 0;
                while (spaces < rest.Length && rest[spaces] == ' ') spaces++;
                if (spaces == rest.Length)
                {
                    // "-" alone: the item is on the following, more indented lines (or is null).
                    Next();
                    SkipBlank();
                    if (!AtEnd && Indent > indent) { if (!WriteNode(writer, Indent)) return false; }
                    else writer.WriteNullValue();
                    continue;
                }
                // "- something": read what follows the dash as a line of its own, indented by the column it starts at. A
                // block scalar right after the dash is indented against the sequence, not that column: left to YamlDotNet.
                if (rest[spaces] is '|' or '>') throw new Unsupported();
                _column += 2 + spaces;
                _indent = indent + 2 + spaces;
                if (!WriteNode(writer, _indent)) return false;
            }
            writer.WriteEndArray();
            return true;
        }

        private bool WriteMapping(Utf8JsonWriter writer, int indent)
        {
            writer.WriteStartObject();
            while (true)
            {
                SkipBlank();
                if (AtEnd || Indent != indent) break;
                var content = Content;
                if (IsDash(content)) break;
                int colon = FindKey(content, out var key);
                if (colon < 0) throw new Unsupported();
                writer.WritePropertyName(key);
                var value = content[(colon + 1)..].TrimStart(' ');
                if (value.IsEmpty || value[0] == '#')
                {
                    Next();
                    SkipBlank();
                    if (!AtEnd && Indent > indent) { if (!WriteNode(writer, Indent)) return false; }
                    else if (!AtEnd && Indent == indent && IsDash(Content)) { if (!WriteSequence(writer, indent)) return false; }
                    else writer.WriteNullValue();
                    continue;
                }
                WriteValue(writer, value, indent);
            }
            writer.WriteEndObject();
            return true;
        }

        /// <summary>Where the key of a mapping entry ends (the colon), or -1; the key's text in <paramref name="key"/>.</summary>
        private static int FindKey(ReadOnlySpan<char> content, out string key)
        {
            key = "";
            if (content.IsEmpty) return -1;
            char first = content[0];
            if (first is '"' or '\'')
            {
                int end = QuotedEnd(content);
                if (end < 0) return -1;
                int after = end + 1;
                while (after < content.Length && content[after] == ' ') after++;
                if (after >= content.Length || content[after] != ':' || (after + 1 < content.Length && content[after + 1] != ' ')) return -1;
                key = first == '"' ? DoubleQuoted(content[1..end]) : content[1..end].ToString().Replace("''", "'", StringComparison.Ordinal);
                return after;
            }
            if (IsIndicator(first) && !(first is '-' or '?' or ':' && content.Length > 1 && content[1] != ' ')) return -1;
            for (int i = 0; i < content.Length; i++)
            {
                char c = content[i];
                if (c == ':' && (i + 1 == content.Length || content[i + 1] == ' '))
                {
                    var text = content[..i].TrimEnd(' ');
                    if (text.IsEmpty) return -1;
                    key = text.ToString();
                    return i;
                }
                if (c == '#' && i > 0 && content[i - 1] == ' ') return -1;
                if (c is '\t') throw new Unsupported();
            }
            return -1;
        }

        private static bool IsIndicator(char c) => c is '-' or '?' or ':' or ',' or '[' or ']' or '{' or '}' or '#' or '&' or '*' or '!' or '|' or '>' or '\'' or '"' or '%' or '@' or '`';

        /// <summary>A value on the line of its key or dash: a scalar, an empty flow collection, or a literal block that continues below.</summary>
        private void WriteValue(Utf8JsonWriter writer, ReadOnlySpan<char> value, int indent)
        {
            char first = value[0];
            switch (first)
            {
                case '"':
                case '\'':
                    {
                        int end = QuotedEnd(value);
                        if (end < 0 || !Trailing(value[(end + 1)..])) throw new Unsupported();
                        writer.WriteStringValue(first == '"' ? DoubleQuoted(value[1..end]) : value[1..end].ToString().Replace("''", "'", StringComparison.Ordinal));
                        Next();
                        break;
                    }
                case '{' or '[':
                    {
                        var rest = value.TrimEnd(' ');
                        if (rest.SequenceEqual("{}")) writer.WriteStartObject();
                        else if (rest.SequenceEqual("[]")) writer.WriteStartArray();
                        else throw new Unsupported();
                        if (first == '{') writer.WriteEndObject();
                        else writer.WriteEndArray();
                        Next();
                        break;
                    }
                case '|':
                    WriteLiteral(writer, value, indent);
                    return;
                default:
                    {
                        if (IsIndicator(first) && !(first is '-' or '?' or ':' && value.Length > 1 && value[1] != ' ')) throw new Unsupported();
                        // A plain scalar ends at " #" (a comment); ": " inside it would be a mapping YamlDotNet reads otherwise.
                        int comment = value.IndexOf(" #", StringComparison.Ordinal);
                        var text = (comment >= 0 ? value[..comment] : value).TrimEnd(' ');
                        if (text.IndexOf(": ", StringComparison.Ordinal) >= 0 || text.EndsWith(':') || text.Contains('\t')) throw new Unsupported();
                        YamlJson.WriteScalar(writer, text.ToString(), YamlDotNet.Core.ScalarStyle.Plain, null);
                        Next();
                        break;
                    }
            }
            // A more indented line after a one-line scalar continues it: a multi-line scalar, left to YamlDotNet.
            SkipBlank();
            if (!AtEnd && Indent > indent) throw new Unsupported();
        }

        /// <summary>What may follow a quoted scalar on its line: nothing, spaces, or spaces and a comment.</summary>
        private static bool Trailing(ReadOnlySpan<char> rest)
        {
            var t = rest.TrimStart(' ');
            return t.IsEmpty || (t[0] == '#' && t.Length < rest.Length);
        }

        /// <summary>Where a quoted scalar that opens at 0 closes on this line, or -1.</summary>
        private static int QuotedEnd(ReadOnlySpan<char> text)
        {
            char quote = text[0];
            for (int i = 1; i < text.Length; i++)
            {
                char c = text[i];
                if (quote == '\'' && c == '\'')
                {
                    if (i + 1 < text.Length && text[i + 1] == '\'') { i++; continue; }
                    return i;
                }
                if (quote == '"')
                {
                    if (c == '\\') { i++; continue; }
                    if (c == '"') return i;
                }
            }
            return -1;
        }

        private static string DoubleQuoted(ReadOnlySpan<char> text)
        {
            if (text.IndexOf('\\') < 0) return text.ToString();
            var result = new StringBuilder(text.Length);
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c != '\\') { result.Append(c); continue; }
                if (++i >= text.Length) throw new Unsupported();
                switch (text[i])
                {
                    case '\\': result.Append('\\'); break;
                    case '"': result.Append('"'); break;
                    case '/': result.Append('/'); break;
                    case 'n': result.Append('\n'); break;
                    case 't': result.Append('\t'); break;
                    case 'r': result.Append('\r'); break;
                    case 'b': result.Append('\b'); break;
                    case 'f': result.Append('\f'); break;
                    case '0': result.Append('\0'); break;
                    case ' ': result.Append(' '); break;
                    case 'u' when i + 4 < text.Length && ushort.TryParse(text.Slice(i + 1, 4), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ushort u):
                        result.Append((char)u);
                        i += 4;
                        break;
                    default:
                        throw new Unsupported();
                }
            }
            return result.ToString();
        }

        /// <summary>A literal block scalar: "|", "|-" or "|+" and lines more indented than its parent, kept as they are.</summary>
        private void WriteLiteral(Utf8JsonWriter writer, ReadOnlySpan<char> header, int parentIndent)
        {
            var indicator = header.TrimEnd(' ');
            int comment = indicator.IndexOf(" #", StringComparison.Ordinal);
            if (comment >= 0) indicator = indicator[..comment].TrimEnd(' ');
            char chomp = indicator.Length == 1 ? ' ' : indicator.Length == 2 && indicator[1] is '-' or '+' ? indicator[1] : throw new Unsupported();
            Next();
            var text = new StringBuilder();
            int blockIndent = -1;
            int trailingBlank = 0;
            // Spaces on the blank lines before the first content line: more than the content's indentation is an error
            // in YAML, and a block of such lines alone is one too (YamlDotNet says so; this reader declines).
            int leadingSpaces = 0;
            while (!AtEnd)
            {
                string line = Line;
                int spaces = 0;
                while (spaces < line.Length && line[spaces] == ' ') spaces++;
                bool blank = spaces == line.Length;
                if (blank)
                {
                    // A blank line belongs to the block as long as the block goes on; with more spaces than the block's
                    // indentation, the rest are content.
                    if (blockIndent >= 0 && spaces > blockIndent) { AppendBlank(text, ref trailingBlank); text.Append(line, blockIndent, spaces - blockIndent); trailingBlank = 0; text.Append('\n'); }
                    else trailingBlank++;
                    if (blockIndent < 0) leadingSpaces = Math.Max(leadingSpaces, spaces);
                    Next();
                    continue;
                }
                if (blockIndent < 0)
                {
                    if (spaces <= parentIndent) break;
                    blockIndent = spaces;
                    if (leadingSpaces > 0) throw new Unsupported();
                }
                if (spaces < blockIndent) break;
                if (line.IndexOf('\t', blockIndent) >= 0 && line[..blockIndent].Contains('\t')) throw new Unsupported();
                for (int b = 0; b < trailingBlank; b++) text.Append('\n');
                trailingBlank = 0;
                text.Append(line, blockIndent, line.Length - blockIndent).Append('\n');
                Next();
            }
            if (blockIndent < 0 && leadingSpaces > 0) throw new Unsupported();
            string value = text.ToString();
            value = chomp switch
            {
                '-' => value.TrimEnd('\n'),
                '+' => value + new string('\n', trailingBlank),
                _ => value.Length == 0 ? "" : value.TrimEnd('\n') + "\n",
            };
            writer.WriteStringValue(value);
            // The blank lines the block did not keep are left behind as skipped.
            _indent = -1;

            static void AppendBlank(StringBuilder text, ref int pending)
            {
                for (int b = 0; b < pending; b++) text.Append('\n');
                pending = 0;
            }
        }
    }
}
