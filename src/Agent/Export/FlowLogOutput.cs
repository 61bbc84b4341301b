namespace Tripline.Export;

/// <summary>Where flow-log lines go: a stream (standard output, a plain file) or a rotating file set.</summary>
internal interface IFlowLogOutput : IDisposable
{
    /// <summary>Appends whole lines (each ends with a newline). A failure is counted by the caller, never thrown past it.</summary>
    void Write(ReadOnlySpan<byte> lines);

    void Flush();
}

/// <summary>Writes to a stream; used for standard output and for a single file.</summary>
internal sealed class StreamFlowLogOutput(Stream stream, bool ownsStream) : IFlowLogOutput
{
    public void Write(ReadOnlySpan<byte> lines) => stream.Write(lines);

    public void Flush() => stream.Flush();

    public void Dispose()
    {
        try
        {
            stream.Flush();
        }
        catch (IOException)
        {
            // The reader of a pipe went away; nothing left to deliver to.
        }
        if (ownsStream) stream.Dispose();
    }
}
