using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tripline.Recommend;

/// <summary>
/// An object of a manifest in the order its fields are written: values are strings, integers, nested maps and lists.
/// Recommend builds documents this way, never through a serializer, so that the bytes depend on the input alone
/// (no reflection either: the agent is published ahead of time).
/// </summary>
internal sealed class DocMap : List<KeyValuePair<string, object>>
{
    /// <summary>Adds the field unless the value is null.</summary>
    public DocMap Set(string key, object? value)
    {
        if (value is not null) Add(new(key, value));
        return this;
    }
}

/// <summary>Writes documents as YAML (block style, as <c>kubectl get -o yaml</c> does) or as JSON.</summary>
internal static partial class ManifestText
{
    public static string Yaml(IEnumerable<DocMap> documents)
    {
        var text = new StringBuilder();
        bool first = true;
        foreach (var document in documents)
        {
            if (!first) text.Append("---\n");
            first = false;
            WriteMap(text, document, 0, firstPrefix: null);
        }
        return text.ToString();
    }

    private static void WriteMap(StringBuilder text, DocMap map, int indent, string? firstPrefix)
    {
        bool first = true;
        foreach (var (key, value) in map)
        {
            if (first && firstPrefix is not null) text.Append(firstPrefix);
            else text.Append(' ', indent);
            first = false;
            text.Append(Scalar(key)).Append(':');
            WriteValue(text, value, indent);
        }
    }

    private static void WriteValue(StringBuilder text, object value, int indent)
    {
        switch (value)
        {
            case DocMap { Count: 0 }:
                text.Append(" {}\n");
                break;
            case DocMap map:
                text.Append('\n');
                WriteMap(text, map, indent + 2, null);
                break;
            case List<object> { Count: 0 }:
                text.Append(" []\n");
                break;
            case List<object> list:
                text.Append('\n');
                foreach (var item in list)
                {
                    if (item is DocMap { Count: > 0 } itemMap)
                    {
                        WriteMap(text, itemMap, indent + 2, new string(' ', indent) + "- ");
                    }
                    else
                    {
                        text.Append(' ', indent).Append('-');
                        WriteValue(text, item, indent);
                    }
                }
                break;
            default:
                text.Append(' ').Append(ScalarValue(value)).Append('\n');
                break;
        }
    }

    private static string ScalarValue(object value) => value switch
    {
        int i => i.ToString(System.Globalization.CultureInfo.InvariantCulture),
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        string s => Scalar(s),
        _ => throw new ArgumentException($"not a manifest value: {value.GetType()}"),
    };

    /// <summary>A string plain when YAML reads it back as that string, else double-quoted (JSON's escapes are YAML's).</summary>
    private static string Scalar(string s) => Plain().IsMatch(s) && !NotAString().IsMatch(s) ? s : Quoted(s);

    private static string Quoted(string s)
    {
        var text = new StringBuilder(s.Length + 2).Append('"');
        foreach (char c in s)
        {
            if (c is '"' or '\\') text.Append('\\').Append(c);
            else if (c < 0x20 || c is '\u007f' or '\u0085' or '\u2028' or '\u2029') text.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            else text.Append(c);
        }
        return text.Append('"').ToString();
    }

    [GeneratedRegex(@"^[A-Za-z0-9_/][A-Za-z0-9_./-]*$")]
    private static partial Regex Plain();

    /// <summary>What YAML 1.1 or 1.2 would read as a number, a boolean or null.</summary>
    [GeneratedRegex(@"^([-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o[0-7]+|[yYnN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL)$")]
    private static partial Regex NotAString();

    public static byte[] Json(DocMap document)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            WriteJson(writer, document);
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteJson(Utf8JsonWriter writer, object value)
    {
        switch (value)
        {
            case DocMap map:
                writer.WriteStartObject();
                foreach (var (key, item) in map)
                {
                    writer.WritePropertyName(key);
                    WriteJson(writer, item);
                }
                writer.WriteEndObject();
                break;
            case List<object> list:
                writer.WriteStartArray();
                foreach (var item in list) WriteJson(writer, item);
                writer.WriteEndArray();
                break;
            case int i:
                writer.WriteNumberValue(i);
                break;
            case long l:
                writer.WriteNumberValue(l);
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            default:
                throw new ArgumentException($"not a manifest value: {value.GetType()}");
        }
    }
}
