using System.Text.Json;

namespace Tripline.Records;

/// <summary>
/// The parts of a flow-log record that an analysis needs, read in place from the line: the record's scalars as
/// byte spans and its <c>src</c> and <c>dst</c> objects as raw JSON (which the analysis keys its cache on and copies
/// into its own output).
/// </summary>
/// <summary>Whether a record of this event is wanted, asked as soon as the event is read.</summary>
internal delegate bool EventFilter(ReadOnlySpan<byte> eventName);

internal ref struct FlowRecordFields
{
    public ReadOnlySpan<byte> Event;
    public ReadOnlySpan<byte> FlowId;
    public ReadOnlySpan<byte> Time;
    public ReadOnlySpan<byte> Protocol;
    public ReadOnlySpan<byte> Verdict;
    /// <summary>The agent's node that wrote the record.</summary>
    public ReadOnlySpan<byte> Node;
    /// <summary>How the orientation is known: observed, inferred or unknown.</summary>
    public ReadOnlySpan<byte> Initiator;
    public ReadOnlySpan<byte> Source;
    public ReadOnlySpan<byte> Destination;
    public long Flows;
    /// <summary>What the network did with the verdict (<c>enforcement</c>), when recorded.</summary>
    public ReadOnlySpan<byte> Enforcement;
    /// <summary>When the flow's first packet was seen (<c>first_seen</c>), when recorded.</summary>
    public ReadOnlySpan<byte> FirstSeen;
    /// <summary>The sides' judgements as raw JSON (objects, or <c>null</c>), when read whole.</summary>
    public ReadOnlySpan<byte> Egress;
    public ReadOnlySpan<byte> Ingress;
    /// <summary>The <c>mesh</c> object as raw JSON (design §10), when recorded.</summary>
    public ReadOnlySpan<byte> Mesh;
    /// <summary>Whether the first payload was TLS (<c>tls</c>, design §10); null when the record does not say.</summary>
    public bool? Tls;

    /// <summary>
    /// False for a line that is not one JSON object with a time, an event and both ends, or whose event
    /// <paramref name="wanted"/> declines (read no further). With <paramref name="stopAfterVerdict"/>, reading stops
    /// once the verdict and both ends are in, so the line is not checked whole.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> line, out FlowRecordFields fields, EventFilter? wanted = null, bool stopAfterVerdict = false)
    {
        fields = default;
        fields.Flows = 1;
        var reader = new Utf8JsonReader(line);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // The record's fields come in a fixed order; once these are read, the rest (sides, counters, flags) is not needed.
                if (stopAfterVerdict && fields.Event.SequenceEqual("end"u8) && !fields.Verdict.IsEmpty && !fields.Source.IsEmpty && !fields.Destination.IsEmpty) break;
                if (reader.ValueTextEquals("src"u8)) fields.Source = Raw(ref reader, line);
                else if (reader.ValueTextEquals("dst"u8)) fields.Destination = Raw(ref reader, line);
                else if (reader.ValueTextEquals("event"u8))
                {
                    fields.Event = Scalar(ref reader);
                    if (wanted is not null && !wanted(fields.Event)) return false;
                }
                else if (reader.ValueTextEquals("flow_id"u8)) fields.FlowId = Scalar(ref reader);
                else if (reader.ValueTextEquals("time"u8)) fields.Time = Scalar(ref reader);
                else if (reader.ValueTextEquals("protocol"u8)) fields.Protocol = Scalar(ref reader);
                else if (reader.ValueTextEquals("verdict"u8)) fields.Verdict = Scalar(ref reader);
                else if (reader.ValueTextEquals("node"u8)) fields.Node = Scalar(ref reader);
                else if (reader.ValueTextEquals("initiator"u8)) fields.Initiator = Scalar(ref reader);
                else if (reader.ValueTextEquals("enforcement"u8)) fields.Enforcement = Scalar(ref reader);
                else if (reader.ValueTextEquals("first_seen"u8)) fields.FirstSeen = Scalar(ref reader);
                else if (reader.ValueTextEquals("egress"u8)) fields.Egress = Raw(ref reader, line);
                else if (reader.ValueTextEquals("ingress"u8)) fields.Ingress = Raw(ref reader, line);
                else if (reader.ValueTextEquals("mesh"u8)) fields.Mesh = Raw(ref reader, line);
                else if (reader.ValueTextEquals("tls"u8))
                {
                    reader.Read();
                    fields.Tls = reader.TokenType switch { JsonTokenType.True => true, JsonTokenType.False => false, _ => null };
                }
                else if (reader.ValueTextEquals("flows"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long flows)) fields.Flows = flows;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            return false;
        }
        return !fields.Time.IsEmpty && !fields.Event.IsEmpty && !fields.Source.IsEmpty && !fields.Destination.IsEmpty;
    }

    private static ReadOnlySpan<byte> Scalar(scoped ref Utf8JsonReader reader)
    {
        reader.Read();
        return reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped ? reader.ValueSpan : default;
    }

    private static ReadOnlySpan<byte> Raw(scoped ref Utf8JsonReader reader, ReadOnlySpan<byte> line)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return default;
        }
        int start = (int)reader.TokenStartIndex;
        reader.Skip();
        return line[start..(int)reader.BytesConsumed];
    }
}
