namespace Tripline.Capture.Pcap;

/// <summary>A capture file that cannot be read further; says which file and at which byte.</summary>
public sealed class CaptureFileException : Exception
{
    public CaptureFileException(string fileName, long offset, string reason)
        : base($"{fileName}: {reason} at byte offset {offset}")
    {
        FileName = fileName;
        Offset = offset;
        Reason = reason;
    }

    public string FileName { get; }
    public long Offset { get; }
    public string Reason { get; }
}
