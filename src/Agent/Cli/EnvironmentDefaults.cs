using System.CommandLine;

namespace Tripline.Cli;

/// <summary>
/// Every option can come from <c>TRIPLINE_&lt;OPTION&gt;</c> (upper case, dashes as underscores), so that a DaemonSet
/// configures the agent with env vars. A flag on the command line wins over the environment.
/// </summary>
internal static class EnvironmentDefaults
{
    public static string VariableName(string option) => "TRIPLINE_" + option.TrimStart('-').Replace('-', '_').ToUpperInvariant();

    public static Option<string?> String(string name, string description, string? fallback = null)
    {
        var option = new Option<string?>(name) { Description = $"{description} [env: {VariableName(name)}]" };
        option.DefaultValueFactory = _ => Environment.GetEnvironmentVariable(VariableName(name)) is { Length: > 0 } value ? value : fallback;
        return option;
    }

    public static Option<string[]> List(string name, string description)
    {
        var option = new Option<string[]>(name)
        {
            Description = $"{description} [env: {VariableName(name)}, comma-separated]",
            AllowMultipleArgumentsPerToken = true,
            Arity = ArgumentArity.ZeroOrMore,
        };
        option.DefaultValueFactory = _ => Environment.GetEnvironmentVariable(VariableName(name)) is { Length: > 0 } value
            ? value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : [];
        return option;
    }

    public static Option<bool> Flag(string name, string description)
    {
        var option = new Option<bool>(name) { Description = $"{description} [env: {VariableName(name)}]" };
        option.DefaultValueFactory = _ => Environment.GetEnvironmentVariable(VariableName(name)) is { Length: > 0 } value
            && (value.Equals("true", StringComparison.OrdinalIgnoreCase) || value == "1" || value.Equals("yes", StringComparison.OrdinalIgnoreCase));
        return option;
    }

    /// <summary>The node name: the flag, TRIPLINE_NODE, the downward API's NODE_NAME, or the host name.</summary>
    public static Option<string> Node()
    {
        var option = new Option<string>("--node") { Description = "node name written on every record [env: TRIPLINE_NODE, NODE_NAME]" };
        option.DefaultValueFactory = _ =>
            Environment.GetEnvironmentVariable("TRIPLINE_NODE") is { Length: > 0 } node ? node
            : Environment.GetEnvironmentVariable("NODE_NAME") is { Length: > 0 } downward ? downward
            : Environment.MachineName;
        return option;
    }
}
