namespace Tripline.Export;

/// <summary>
/// A flow-log file written in whole lines: every write goes straight to the file (no stream buffer), a write that
/// fails part-way (a full disk) is taken back to the last whole line, and a cut last line left by a crash is trimmed
/// when the file is opened. So the file always ends with a whole line, and a failed write costs exactly the records
/// it held. Files are created 0640.
/// </summary>
internal sealed class LineFile : IDisposable
{
    private const UnixFileMode FileMode0640 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;

    private readonly FileStream _file;

    private LineFile(FileStream file, long length, long trimmed)
    {
        _file = file;
        Length = length;
        TrimmedBytes = trimmed;
    }

    /// <summary>Bytes of whole lines in the file.</summary>
    public long Length { get; private set; }

    /// <summary>A failed write could not be taken back: close the file, and opening it again trims the cut line.</summary>
    public bool Broken { get; private set; }

    /// <summary>Bytes of a cut last line removed on open (a previous run was killed mid-write).</summary>
    public long TrimmedBytes { get; }

    /// <summary>Opens (creating it when absent) to append, or emptied when <paramref name="truncate"/>.</summary>
    public static LineFile Open(string path, bool truncate)
    {
        var file = new FileStream(path, Options(truncate ? FileMode.Create : FileMode.OpenOrCreate, FileAccess.ReadWrite, bufferSize: 0));
        try
        {
            long before = file.Length;
            long length = truncate ? 0 : TrimCutLine(file);
            file.Position = length;
            return new LineFile(file, length, before - length);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    internal static FileStreamOptions Options(FileMode mode, FileAccess access, int bufferSize)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = FileShare.Read | FileShare.Delete, BufferSize = bufferSize };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = FileMode0640;
        return options;
    }

    /// <summary>Appends whole lines; on failure the file is cut back to its last whole line and the error rethrown.</summary>
    public void Write(ReadOnlySpan<byte> lines)
    {
        try
        {
            _file.Write(lines);
            Length += lines.Length;
        }
        catch (IOException)
        {
            // Disk full or a device error: a partial write moved the file's end; take it back so that no cut line sits
            // mid-file once later writes succeed.
            try
            {
                _file.SetLength(Length);
                _file.Position = Length;
            }
            catch (IOException)
            {
                Broken = true;
            }
            throw;
        }
    }

    public void Dispose() => _file.Dispose();

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
}

/// <summary>One flow-log file, written in whole lines (<c>replay --flow-log FILE</c>): emptied on open.</summary>
internal sealed class SingleFileOutput(string path) : IFlowLogOutput
{
    private readonly LineFile _file = LineFile.Open(path, truncate: true);

    public void Write(ReadOnlySpan<byte> lines) => _file.Write(lines);

    public void Flush()
    {
        // Every write already went to the file.
    }

    public void Dispose() => _file.Dispose();
}
