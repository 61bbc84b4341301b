using System.Globalization;
using System.IO.Compression;

namespace Tripline.Export;

/// <summary>
/// The flow log as a set of files: <c>tripline-flows.log</c> is written until it would pass the size limit, then
/// renamed <c>tripline-flows-&lt;UTC time&gt;.log</c> and gzipped in the background; the oldest rotated files are
/// deleted past the count or total-size limit. Files are created 0640.
/// <para>
/// Every write is one whole batch of lines straight to the file (no stream buffer), so a crash can cut only the last
/// line; on open, a cut last line left by a previous run is truncated away. A failed write is thrown to the
/// exporter, which counts its records; the file is reopened at most once a second after that.
/// </para>
/// </summary>
internal sealed class RotatingFileOutput : IFlowLogOutput
{
    private const UnixFileMode FileMode0640 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    private readonly string _directory;
    private readonly string _stem;
    private readonly string _extension;
    private readonly FlowLogOptions _options;
    private readonly TimeProvider _time;
    private readonly List<Task> _compressions = [];
    private FileStream? _file;
    private long _length;
    private long _retryAt;
    private bool _failedBefore;

    /// <summary><paramref name="path"/> is the active file; rotated files go beside it.</summary>
    public RotatingFileOutput(string path, FlowLogOptions options, TimeProvider? time = null)
    {
        ActivePath = Path.GetFullPath(path);
        _directory = Path.GetDirectoryName(ActivePath)!;
        _stem = Path.GetFileNameWithoutExtension(ActivePath);
        _extension = Path.GetExtension(ActivePath);
        _options = options;
        _time = time ?? TimeProvider.System;
    }

    public const string DefaultFileName = "tripline-flows.log";

    /// <summary>A directory gets <see cref="DefaultFileName"/> inside it; a file path is the active file.</summary>
    public static string ResolveActivePath(string flowLog) => Directory.Exists(flowLog) ? Path.Combine(flowLog, DefaultFileName) : flowLog;

    public string ActivePath { get; }

    public long Rotations { get; private set; }

    public void Write(ReadOnlySpan<byte> lines)
    {
        var file = _file ?? Open();
        if (_length > 0 && _length + lines.Length > _options.MaxFileBytes)
        {
            Rotate();
            file = Open();
        }
        try
        {
            file.Write(lines);
            _length += lines.Length;
        }
        catch (IOException)
        {
            // Disk full or a device error: take back a partial write so that no cut line sits mid-file.
            try
            {
                file.SetLength(_length);
                file.Position = _length;
            }
            catch (IOException)
            {
                Close();
            }
            throw;
        }
    }

    public void Flush() => _file?.Flush();

    private FileStream Open()
    {
        if (_failedBefore && _time.GetTimestamp() < _retryAt) throw new IOException($"flow log {ActivePath} unavailable; retrying");
        try
        {
            var file = new FileStream(ActivePath, CreateOptions(FileMode.OpenOrCreate, FileAccess.ReadWrite, bufferSize: 0));
            _length = TrimCutLine(file);
            file.Position = _length;
            _file = file;
            _failedBefore = false;
            return file;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _failedBefore = true;
            _retryAt = _time.GetTimestamp() + (long)(RetryAfter.TotalSeconds * _time.TimestampFrequency);
            throw;
        }
    }

    private static FileStreamOptions CreateOptions(FileMode mode, FileAccess access, int bufferSize)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = FileShare.Read | FileShare.Delete, BufferSize = bufferSize };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = FileMode0640;
        return options;
    }

    /// <summary>Drops a last line without its newline (a write cut by a crash); returns the length kept.</summary>
    private static long TrimCutLine(FileStream file)
    {
        long length = file.Length;
        if (length == 0) return 0;
        Span<byte> last = stackalloc byte[1];
        file.Position = length - 1;
        file.ReadExactly(last);
        if (last[0] == (byte)'\n') return length;
        byte[] chunk = new byte[64 * 1024];
        long end = length;
        while (end > 0)
        {
            int n = (int)Math.Min(chunk.Length, end);
            file.Position = end - n;
            file.ReadExactly(chunk, 0, n);
            int newline = Array.LastIndexOf(chunk, (byte)'\n', n - 1, n);
            if (newline >= 0)
            {
                long keep = end - n + newline + 1;
                file.SetLength(keep);
                return keep;
            }
            end -= n;
        }
        file.SetLength(0);
        return 0;
    }

    private void Rotate()
    {
        Close();
        string stamp = _time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss.ffffff'Z'", CultureInfo.InvariantCulture);
        string rotated = Path.Combine(_directory, $"{_stem}-{stamp}{_extension}");
        for (int i = 1; File.Exists(rotated) || File.Exists(rotated + ".gz"); i++)
        {
            rotated = Path.Combine(_directory, $"{_stem}-{stamp}-{i}{_extension}");
        }
        try
        {
            File.Move(ActivePath, rotated);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _failedBefore = true;
            _retryAt = _time.GetTimestamp() + (long)(RetryAfter.TotalSeconds * _time.TimestampFrequency);
            throw;
        }
        Rotations++;
        if (_options.Compress)
        {
            lock (_compressions)
            {
                _compressions.RemoveAll(t => t.IsCompleted);
                _compressions.Add(Task.Run(() => Compress(rotated)));
            }
        }
        ApplyRetention();
    }

    /// <summary>gzips to a temporary name and renames, so a reader never sees half a .gz.</summary>
    private void Compress(string path)
    {
        string temporary = path + ".gz.tmp";
        try
        {
            using (var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16))
            using (var output = new FileStream(temporary, CreateOptions(FileMode.Create, FileAccess.Write, bufferSize: 1 << 16)))
            using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
            {
                input.CopyTo(gzip);
            }
            File.Move(temporary, path + ".gz");
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Keep the uncompressed file: it is still a readable log.
            try { File.Delete(temporary); } catch (IOException) { }
        }
        ApplyRetention();
    }

    /// <summary>Rotated files of this log, oldest first (the UTC time in their names sorts).</summary>
    public IReadOnlyList<FileInfo> RotatedFiles()
    {
        var result = new List<FileInfo>();
        foreach (var file in new DirectoryInfo(_directory).EnumerateFiles(_stem + "-*"))
        {
            string name = file.Name;
            if (name.EndsWith(".tmp", StringComparison.Ordinal)) continue;
            if (name.EndsWith(_extension, StringComparison.Ordinal) || name.EndsWith(_extension + ".gz", StringComparison.Ordinal)) result.Add(file);
        }
        // A rotated file being compressed exists twice for a moment; count the one that will stay.
        result.RemoveAll(f => !f.Name.EndsWith(".gz", StringComparison.Ordinal) && File.Exists(f.FullName + ".gz"));
        result.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return result;
    }

    private void ApplyRetention()
    {
        lock (_compressions)
        {
            try
            {
                var rotated = RotatedFiles().ToList();
                // The active file counts at the size it may reach, so the total stays under the limit between rotations.
                long total = rotated.Sum(f => f.Length) + _options.MaxFileBytes;
                while (rotated.Count > 0 && (rotated.Count > _options.MaxFiles || total > _options.MaxTotalBytes))
                {
                    var oldest = rotated[0];
                    rotated.RemoveAt(0);
                    total -= oldest.Length;
                    oldest.Delete();
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Retention tries again at the next rotation.
            }
        }
    }

    private void Close()
    {
        var file = _file;
        _file = null;
        if (file is null) return;
        try
        {
            file.Dispose();
        }
        catch (IOException)
        {
            // Nothing was buffered (no stream buffer); a close error loses nothing more.
        }
    }

    /// <summary>Waits for background compressions (shutdown, tests).</summary>
    public void WaitForCompression()
    {
        Task[] pending;
        lock (_compressions) pending = [.. _compressions];
        Task.WaitAll(pending);
    }

    public void Dispose()
    {
        Close();
        WaitForCompression();
    }
}
