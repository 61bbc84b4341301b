using System.Text;

namespace Tripline.Records;

/// <summary>
/// What decides a recorded flow's verdict, as text: its protocol, its source as recorded without the (ephemeral)
/// source port, and its destination as recorded. Flows with the same key are judged alike, so analyses cache and
/// aggregate by it. Built in reused buffers: the span is valid until the next call.
/// </summary>
internal sealed class EndpointPairKey
{
    private byte[] _bytes = new byte[1024];
    private char[] _chars = new char[1024];

    public ReadOnlySpan<char> Of(in FlowRecordFields record)
    {
        ReadOnlySpan<byte> source = record.Source;
        int port = source.IndexOf(",\"port\":"u8);
        ReadOnlySpan<byte> before = source, after = default;
        if (port >= 0)
        {
            int end = port + 8;
            while (end < source.Length && source[end] is not ((byte)',' or (byte)'}')) end++;
            before = source[..port];
            after = source[end..];
        }
        int length = record.Protocol.Length + 1 + before.Length + after.Length + 1 + record.Destination.Length;
        if (_bytes.Length < length)
        {
            _bytes = new byte[Math.Max(length, _bytes.Length * 2)];
            _chars = new char[_bytes.Length];
        }
        var bytes = _bytes.AsSpan();
        int at = 0;
        record.Protocol.CopyTo(bytes[at..]);
        at += record.Protocol.Length;
        bytes[at++] = (byte)'|';
        before.CopyTo(bytes[at..]);
        at += before.Length;
        after.CopyTo(bytes[at..]);
        at += after.Length;
        bytes[at++] = (byte)'|';
        record.Destination.CopyTo(bytes[at..]);
        at += record.Destination.Length;
        int chars = Encoding.UTF8.GetChars(bytes[..at], _chars);
        return _chars.AsSpan(0, chars);
    }
}
