using System.Text;
using System.Text.Json;
using Tripline.Records;

namespace Tripline.Report;

/// <summary>
/// What the report folds a flow by: its protocol, its source as recorded without the (ephemeral) source port, and its
/// destination as recorded; for a pod end also without the pod's own name, uid, address and node, so that a
/// workload's pods fold together when they carry the same labels (what the engine judges them by). Memory then grows
/// with the distinct label sets, peers and ports, not with the pods or the log. Built in reused buffers: the span is
/// valid until the next call.
/// </summary>
internal sealed class ReportPairKey
{
    private byte[] _bytes = new byte[2048];
    private char[] _chars = new char[2048];
    private int _length;

    public ReadOnlySpan<char> Of(in FlowRecordFields record)
    {
        _length = 0;
        Append(record.Protocol);
        Append("|"u8);
        AppendEnd(record.Source, source: true);
        Append("|"u8);
        AppendEnd(record.Destination, source: false);
        if (_chars.Length < _length) _chars = new char[_bytes.Length];
        int chars = Encoding.UTF8.GetChars(_bytes.AsSpan(0, _length), _chars);
        return _chars.AsSpan(0, chars);
    }

    private void AppendEnd(ReadOnlySpan<byte> end, bool source)
    {
        bool pod = end.IndexOf("\"kind\":\"pod\""u8) >= 0;
        var reader = new Utf8JsonReader(end);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                Append(end);
                return;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                int start = (int)reader.TokenStartIndex;
                bool skip = (source && reader.ValueTextEquals("port"u8))
                    || (pod && (reader.ValueTextEquals("ip"u8) || reader.ValueTextEquals("pod"u8) || reader.ValueTextEquals("uid"u8) || reader.ValueTextEquals("node"u8)));
                reader.Read();
                reader.Skip();
                if (!skip)
                {
                    Append(end[start..(int)reader.BytesConsumed]);
                    Append(","u8);
                }
            }
        }
        catch (JsonException)
        {
            Append(end);
        }
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_bytes.Length < _length + bytes.Length) Array.Resize(ref _bytes, Math.Max(_length + bytes.Length, _bytes.Length * 2));
        bytes.CopyTo(_bytes.AsSpan(_length));
        _length += bytes.Length;
    }
}
