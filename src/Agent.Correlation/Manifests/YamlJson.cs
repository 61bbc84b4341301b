using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace Tripline.Correlation.Manifests;

/// <summary>
/// YAML documents as JSON, to be read into typed models with metadata generated at build time instead of a
/// reflection-based YAML deserializer. Plain scalars are typed by the YAML 1.2 core schema (null, booleans, numbers),
/// quoted ones are strings; the converters here then read a value as YAML would have typed it for the model: a number
/// or boolean where the model wants a string (a label <c>version: 2</c>), a number written as a string
/// (<c>containerPort: "80"</c>, with <see cref="System.Text.Json.Serialization.JsonNumberHandling.AllowReadingFromString"/>),
/// and YAML 1.1's booleans (<c>hostNetwork: yes</c>).
/// </summary>
internal static partial class YamlJson
{
    /// <summary>A number in JSON's own syntax: <c>-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?</c>. Checked on every plain scalar.</summary>
    internal static bool IsJsonNumber(ReadOnlySpan<char> text)
    {
        int i = 0;
        if (i < text.Length && text[i] == '-') i++;
        if (i >= text.Length) return false;
        if (text[i] == '0') i++;
        else if (text[i] is >= '1' and <= '9') while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
        else return false;
        if (i < text.Length && text[i] == '.')
        {
            int start = ++i;
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
            if (i == start) return false;
        }
        if (i < text.Length && text[i] is 'e' or 'E')
        {
            i++;
            if (i < text.Length && text[i] is '+' or '-') i++;
            int start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
            if (i == start) return false;
        }
        return i == text.Length;
    }

    /// <summary>A YAML null: a plain <c>~</c>, <c>null</c> (in the cases YAML allows) or nothing at all. A quoted scalar is a string.</summary>
    public static bool IsNull(YamlNode? node) => node is YamlScalarNode scalar && IsNullScalar(scalar.Value, scalar.Style);

    /// <summary>A YAML null as a scalar's text and style.</summary>
    public static bool IsNullScalar(string? value, YamlDotNet.Core.ScalarStyle style) =>
        value is null || (style is YamlDotNet.Core.ScalarStyle.Plain && value is "" or "~" or "null" or "Null" or "NULL");

    /// <summary>The text of the scalar under <paramref name="key"/>; null when the key is missing, holds no scalar, or holds a YAML null.</summary>
    public static string? Text(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode scalar && !IsNull(scalar) ? scalar.Value : null;

    /// <summary>A boolean in YAML 1.1's words as well as 1.2's (true, yes, y, on; false, no, n, off; any case), as KubernetesYaml reads them.</summary>
    public static bool TryReadBoolean(string text, out bool value)
    {
        switch (text.ToLowerInvariant())
        {
            case "true" or "yes" or "y" or "on":
                value = true;
                return true;
            case "false" or "no" or "n" or "off":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    /// <summary>The node as UTF-8 JSON.</summary>
    public static ReadOnlyMemory<byte> ToJson(YamlNode node)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, node);
        }
        return buffer.WrittenMemory;
    }

    public static void Write(Utf8JsonWriter writer, YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                writer.WriteStartObject();
                foreach (var (key, value) in mapping.Children)
                {
                    writer.WritePropertyName(key is YamlScalarNode { Value: { } name } ? name : key.ToString());
                    Write(writer, value);
                }
                writer.WriteEndObject();
                break;
            case YamlSequenceNode sequence:
                writer.WriteStartArray();
                foreach (var item in sequence) Write(writer, item);
                writer.WriteEndArray();
                break;
            case YamlScalarNode scalar:
                WriteScalar(writer, scalar);
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }

    private static void WriteScalar(Utf8JsonWriter writer, YamlScalarNode scalar) =>
        WriteScalar(writer, scalar.Value, scalar.Style, scalar.Tag.IsEmpty ? null : scalar.Tag.Value);

    /// <summary>A scalar typed as YAML's core schema types it: quoted (or tagged !!str) is a string, plain may be null, a boolean or a number.</summary>
    public static void WriteScalar(Utf8JsonWriter writer, string? scalarValue, YamlDotNet.Core.ScalarStyle style, string? tag)
    {
        if (tag is "tag:yaml.org,2002:str")
        {
            writer.WriteStringValue(scalarValue ?? "");
            return;
        }
        if (IsNullScalar(scalarValue, style))
        {
            writer.WriteNullValue();
            return;
        }
        string value = scalarValue!;
        if (style is not YamlDotNet.Core.ScalarStyle.Plain)
        {
            writer.WriteStringValue(value);
            return;
        }
        switch (value)
        {
            case "true" or "True" or "TRUE":
                writer.WriteBooleanValue(true);
                return;
            case "false" or "False" or "FALSE":
                writer.WriteBooleanValue(false);
                return;
        }
        // A plain scalar that is a number in JSON's own syntax goes in as written, so that a model's string keeps the
        // text (a label "1.10" stays "1.10"); other numbers YAML reads ("007", "+5") go in as strings, which the
        // reading options take for numbers where the model wants one.
        if (IsJsonNumber(value)) writer.WriteRawValue(value, skipInputValidation: true);
        else writer.WriteStringValue(value);
    }

    /// <summary>A string from any scalar: a number keeps the text it was written with.</summary>
    public sealed class ScalarAsString : System.Text.Json.Serialization.JsonConverter<string>
    {
        public override bool HandleNull => false;

        public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
        {
            JsonTokenType.String => reader.GetString()!,
            JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
            JsonTokenType.True => "true",
            JsonTokenType.False => "false",
            _ => throw new JsonException($"expected a string, found {reader.TokenType}"),
        };

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

        // Label keys and the like: a property name is a string already.
        public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetString()!;

        public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(value);
    }

    /// <summary>A boolean, also from YAML 1.1's words for one (<see cref="TryReadBoolean"/>).</summary>
    public sealed class YamlBoolean : System.Text.Json.Serialization.JsonConverter<bool>
    {
        public override bool Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.True: return true;
                case JsonTokenType.False: return false;
                case JsonTokenType.String when TryReadBoolean(reader.GetString()!, out bool value):
                    return value;
            }
            throw new JsonException($"expected a boolean, found {(reader.TokenType == JsonTokenType.String ? "'" + reader.GetString() + "'" : reader.TokenType.ToString())}");
        }

        public override void Write(Utf8JsonWriter writer, bool value, JsonSerializerOptions options) => writer.WriteBooleanValue(value);
    }
}
