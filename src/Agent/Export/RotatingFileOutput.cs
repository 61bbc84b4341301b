using System.Globalization;
using System.IO.Compression;

namespace Tripline.Export;

/// <summary>
/// The flow log as a set of files: <c>tripline-flows.log</c> is written until it would pass the size limit, then
/// renamed <c>tripline-flows-&lt;UTC time&gt;.log</c> and gzipped in the background; the oldest rotated files are
/// deleted past the count or total-size limit, and past the age limit when one is set (checked at every rotation and at
/// least once a minute, so a quiet node deletes old files too). Files are created 0640.
/// <para>
/// The active file is a <see cref="LineFile"/>: every write is one whole batch of lines straight to the file, so a
/// crash can cut only the last line, which is trimmed when the file is opened again; a failed write is taken back to
/// the last whole line and thrown to the exporter, which counts its records; the file is reopened at most once a
/// second after a failure to open it.
/// </para>
/// </summary>
internal sealed class RotatingFileOutput : IFlowLogOutput
{
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan AgeCheckInterval = TimeSpan.FromMinutes(1);

    private readonly string _directory;
    private readonly string _stem;
    private readonly string _extension;
    private readonly FlowLogOptions _options;
    private readonly TimeProvider _time;
    private readonly List<Task> _compressions = [];
    private LineFile? _file;
    private long _retryAt;
    private bool _failedBefore;
    private DateTimeOffset _nextAgeCheck = DateTimeOffset.MinValue;

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
        CheckAge();
        var file = _file ?? Open();
        if (file.Length > 0 && file.Length + lines.Length > _options.MaxFileBytes)
        {
            Rotate();
            file = Open();
        }
        try
        {
            file.Write(lines);
        }
        catch (IOException)
        {
            // The file was taken back to its last whole line; should even that fail, reopen it (trimming) next time.
            if (file.Broken) Close();
            throw;
        }
    }

    /// <summary>Every write goes straight to the file; nothing is buffered here. The exporter flushes often, so the age limit is applied here too.</summary>
    public void Flush() => CheckAge();

    private void CheckAge()
    {
        if (_options.MaxAge is null) return;
        var now = _time.GetUtcNow();
        if (now < _nextAgeCheck) return;
        _nextAgeCheck = now + AgeCheckInterval;
        ApplyRetention();
    }

    /// <summary>
    /// When a rotated file was rotated, which is when its newest record was written: the UTC time in its name, or, for a
    /// name without one, the time it was last written.
    /// </summary>
    internal DateTimeOffset RotatedAt(FileInfo file)
    {
        string name = file.Name;
        int start = _stem.Length + 1;
        if (name.Length >= start + 23 && DateTimeOffset.TryParseExact(name.AsSpan(start, 23), "yyyyMMdd'T'HHmmss.ffffff'Z'",
            CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var stamp))
        {
            return stamp;
        }
        return file.LastWriteTimeUtc;
    }

    /// <summary>
    /// Opens the active file now (it is otherwise opened by the first write), so that the file exists from the start
    /// and a directory the agent cannot write to is reported at once. A cut last line left by a crash is trimmed.
    /// </summary>
    public LineFile Open()
    {
        if (_file is { } open) return open;
        if (_failedBefore && _time.GetTimestamp() < _retryAt) throw new IOException($"flow log {ActivePath} unavailable; retrying");
        try
        {
            var file = LineFile.Open(ActivePath, truncate: false);
            TrimmedBytes += file.TrimmedBytes;
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

    /// <summary>Bytes of cut last lines trimmed from the active file when it was opened (a crash cut them).</summary>
    public long TrimmedBytes { get; private set; }

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
            using (var output = new FileStream(temporary, LineFile.Options(FileMode.Create, FileAccess.Write, bufferSize: 1 << 16)))
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
                var oldestKept = _options.MaxAge is { } maxAge ? _time.GetUtcNow() - maxAge : DateTimeOffset.MinValue;
                while (rotated.Count > 0 && (rotated.Count > _options.MaxFiles || total > _options.MaxTotalBytes || RotatedAt(rotated[0]) < oldestKept))
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
