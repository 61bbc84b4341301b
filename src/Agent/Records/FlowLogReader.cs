using System.IO.Compression;
using System.Text.RegularExpressions;

namespace Tripline.Records;

/// <summary>Receives one line of a flow log, without its newline; the span is valid only during the call.</summary>
internal delegate void FlowLineHandler(ReadOnlySpan<byte> line);

/// <summary>
/// Reads flow logs as they lie on a node: one file, or a directory of rotated files (gzip-compressed or not) and
/// the one being written, oldest first. Streams with one fixed buffer, so memory does not grow with the log.
/// </summary>
internal static partial class FlowLogReader
{
    /// <summary>The files of <paramref name="path"/> in the order they were written; the active file last.</summary>
    public static IReadOnlyList<string> ListFiles(string path)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"no such file or directory: {path}", path);
        var files = new DirectoryInfo(path).EnumerateFiles()
            .Where(f => IsLogName(f.Name))
            .ToList();
        // Names of rotated files carry their UTC rotation time, which sorts; files without one were written last.
        return [.. files
            .OrderBy(f => RotationStamp().Match(f.Name) is { Success: true } m ? 0 : 1)
            .ThenBy(f => RotationStamp().Match(f.Name) is { Success: true } m ? m.Value : "", StringComparer.Ordinal)
            .ThenBy(f => f.LastWriteTimeUtc)
            .ThenBy(f => f.Name, StringComparer.Ordinal)
            .Select(f => f.FullName)];
    }

    private static bool IsLogName(string name)
    {
        if (name.EndsWith(".tmp", StringComparison.Ordinal)) return false;
        string plain = name.EndsWith(".gz", StringComparison.Ordinal) ? name[..^3] : name;
        return plain.EndsWith(".log", StringComparison.Ordinal) || plain.EndsWith(".jsonl", StringComparison.Ordinal) || plain.EndsWith(".json", StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\d{8}T\d{6}(\.\d+)?Z(-\d+)?")]
    private static partial Regex RotationStamp();

    /// <summary>Opens a log file, decompressing <c>.gz</c>.</summary>
    public static Stream Open(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        if (!path.EndsWith(".gz", StringComparison.Ordinal)) return file;
        return new GZipStream(file, CompressionMode.Decompress);
    }

    /// <summary>Calls <paramref name="onLine"/> for every line of the file; a last line without newline included.</summary>
    public static void ReadFile(string path, FlowLineHandler onLine)
    {
        using var stream = Open(path);
        var lines = new LineReader(stream);
        while (lines.TryReadLine(out var line, final: true)) onLine(line);
    }
}

/// <summary>
/// Splits a stream into lines with one reused buffer. A line longer than <see cref="MaxLine"/> is skipped whole
/// (reported as a one-byte line that no parser accepts). Without <c>final</c>, a last line with no newline yet is
/// kept for the next call, as a follower needs.
/// </summary>
internal sealed class LineReader(Stream stream)
{
    public const int MaxLine = 4 << 20;
    /// <summary>Stands for a line too long to be a record: no parser accepts it, so it is counted as damaged.</summary>
    private static readonly byte[] TooLong = "!"u8.ToArray();
    private byte[] _buffer = new byte[1 << 20];
    private int _start;
    private int _end;
    private bool _skipping;

    public long BytesConsumed { get; private set; }

    /// <summary>False when no whole line is available (end of the stream for now).</summary>
    public bool TryReadLine(out ReadOnlySpan<byte> line, bool final)
    {
        while (true)
        {
            int newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                int length = newline;
                int from = _start;
                _start += newline + 1;
                BytesConsumed += newline + 1;
                if (_skipping)
                {
                    _skipping = false;
                    line = TooLong;
                    return true;
                }
                line = _buffer.AsSpan(from, length);
                if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
                return true;
            }
            if (!Fill())
            {
                if (final && _end > _start)
                {
                    line = _skipping ? TooLong : _buffer.AsSpan(_start, _end - _start);
                    BytesConsumed += _end - _start;
                    _start = _end = 0;
                    _skipping = false;
                    return true;
                }
                line = default;
                return false;
            }
        }
    }

    /// <summary>Reads more; false at the end of the stream (for now).</summary>
    private bool Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
        {
            if (_buffer.Length >= MaxLine)
            {
                // A line this long is no record: drop what we have and skip to its end.
                BytesConsumed += _end;
                _end = 0;
                _skipping = true;
            }
            else
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
        }
        int n = stream.Read(_buffer, _end, _buffer.Length - _end);
        if (n == 0) return false;
        _end += n;
        return true;
    }
}
