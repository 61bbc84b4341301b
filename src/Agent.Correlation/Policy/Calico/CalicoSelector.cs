using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using Tripline.Correlation.Cluster;

namespace Tripline.Correlation.Policy.Calico;

/// <summary>
/// A Calico selector (<c>app == 'web' &amp;&amp; !has(canary)</c>), parsed as libcalico-go parses it and compiled once
/// into a tree of small nodes that matches a label set without allocating.
/// </summary>
/// <remarks>
/// The selector is pure: it sees only the labels the caller hands it. Calico's scoping (the implicit
/// <c>projectcalico.org/namespace</c> term of a NetworkPolicy, the <c>pcns.</c> prefix of a namespaceSelector, what
/// <c>all()</c> and <c>global()</c> turn into there) is the policy compiler's business. Inside the language
/// <c>global()</c> matches everything, as in libcalico-go; <see cref="UsesGlobal"/> tells the caller it must apply the
/// real meaning (non-namespaced endpoints only). The empty or all-blank selector parses to <c>all()</c>, as
/// <c>parser.Parse</c> does; whether an absent or empty field means "everything" or "no constraint" is the caller's to
/// decide by field.
/// </remarks>
internal sealed partial class CalicoSelector
{
    /// <summary>Longest label key Calico's tokenizer accepts (<c>MaxLabelLength</c>).</summary>
    public const int MaxLabelLength = 512;

    /// <summary>
    /// Deepest nesting of parentheses accepted. Calico has no limit (Go stacks grow); here parsing and matching recurse,
    /// and a selector from a manifest must not be able to overflow the stack.
    /// </summary>
    public const int MaxNesting = 128;

    /// <summary><c>all()</c>: what the empty selector means.</summary>
    public static readonly CalicoSelector All = new(AllNode.Instance, usesGlobal: false);

    private readonly Node _root;
    private readonly string _text;

    private CalicoSelector(Node root, bool usesGlobal)
    {
        _root = root;
        UsesGlobal = usesGlobal;
        var text = new StringBuilder();
        root.Write(text);
        _text = text.ToString();
    }

    /// <summary>
    /// True when <c>global()</c> appears anywhere. Calico evaluates it as true inside the selector and gives it its
    /// meaning (only non-namespaced endpoints: host endpoints, global network sets) by rewriting it, and allows it only
    /// as the whole of a rule's namespaceSelector; the caller judges where it stands.
    /// </summary>
    public bool UsesGlobal { get; }

    /// <summary>
    /// Parses <paramref name="text"/> as libcalico-go does. On failure <paramref name="error"/> names the 1-based column
    /// and what was expected there.
    /// </summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out CalicoSelector? selector, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parser = new Parser(text);
        if (!parser.TryParseSelector(out var root, out bool usesGlobal))
        {
            selector = null;
            error = parser.Error!;
            return false;
        }
        selector = ReferenceEquals(root, AllNode.Instance) ? All : new CalicoSelector(root, usesGlobal);
        error = null;
        return true;
    }

    public bool Matches(LabelSet labels) => _root.Matches(labels);

    /// <summary>
    /// The canonical text, as libcalico-go's <c>String()</c> writes it: single spaces, values in double quotes (single
    /// when the value holds a double quote), sets sorted and de-duplicated, every <c>&amp;&amp;</c>/<c>||</c> group
    /// in parentheses, <c>!</c> runs collapsed. It parses back to a selector with the same answers and, but for one
    /// Calico quirk, the same text: <c>!(!has(a))</c> is written <c>!!has(a)</c>, which reads back as <c>has(a)</c>.
    /// </summary>
    public override string ToString() => _text;

    private abstract class Node
    {
        public abstract bool Matches(LabelSet labels);

        public abstract void Write(StringBuilder text);
    }

    private sealed class AllNode : Node
    {
        public static readonly AllNode Instance = new();

        public override bool Matches(LabelSet labels) => true;

        public override void Write(StringBuilder text) => text.Append("all()");
    }

    /// <summary>True here, as in libcalico-go: its meaning comes from the caller (see <see cref="UsesGlobal"/>).</summary>
    private sealed class GlobalNode : Node
    {
        public static readonly GlobalNode Instance = new();

        public override bool Matches(LabelSet labels) => true;

        public override void Write(StringBuilder text) => text.Append("global()");
    }

    private sealed class HasNode(string key) : Node
    {
        public override bool Matches(LabelSet labels) => labels.ContainsKey(key);

        public override void Write(StringBuilder text) => text.Append("has(").Append(key).Append(')');
    }

    private sealed class NotNode(Node operand) : Node
    {
        public override bool Matches(LabelSet labels) => !operand.Matches(labels);

        public override void Write(StringBuilder text)
        {
            text.Append('!');
            operand.Write(text);
        }
    }

    private sealed class AndNode(Node[] operands) : Node
    {
        public override bool Matches(LabelSet labels)
        {
            foreach (var operand in operands)
            {
                if (!operand.Matches(labels)) return false;
            }
            return true;
        }

        public override void Write(StringBuilder text) => WriteGroup(text, operands, " && ");
    }

    private sealed class OrNode(Node[] operands) : Node
    {
        public override bool Matches(LabelSet labels)
        {
            foreach (var operand in operands)
            {
                if (operand.Matches(labels)) return true;
            }
            return false;
        }

        public override void Write(StringBuilder text) => WriteGroup(text, operands, " || ");
    }

    private static void WriteGroup(StringBuilder text, Node[] operands, string separator)
    {
        text.Append('(');
        for (int i = 0; i < operands.Length; i++)
        {
            if (i > 0) text.Append(separator);
            operands[i].Write(text);
        }
        text.Append(')');
    }

    /// <summary>A test of one label's value; what an absent label gives differs by operator.</summary>
    private abstract class LabelNode(string key, bool whenAbsent) : Node
    {
        protected string Key { get; } = key;

        public sealed override bool Matches(LabelSet labels) => labels.TryGetValue(Key, out var value) ? Test(value!) : whenAbsent;

        protected abstract bool Test(string value);
    }

    private enum ValueOperator : byte
    {
        Equal,
        NotEqual,
        Contains,
        StartsWith,
        EndsWith,
    }

    /// <summary>
    /// <c>==</c>, <c>!=</c>, <c>contains</c>, <c>starts with</c>, <c>ends with</c>. Only <c>!=</c> is true for an absent
    /// label (so is <c>not in</c>): <c>!has(k)</c> is the only test for absence alone.
    /// </summary>
    private sealed class ValueNode(string key, ValueOperator op, string operand) : LabelNode(key, op == ValueOperator.NotEqual)
    {
        // Ordinal throughout: Calico compares bytes, case-sensitively. An empty operand is contained in, starts and
        // ends every value, but the label must still be there.
        protected override bool Test(string value) => op switch
        {
            ValueOperator.Equal => string.Equals(value, operand, StringComparison.Ordinal),
            ValueOperator.NotEqual => !string.Equals(value, operand, StringComparison.Ordinal),
            ValueOperator.Contains => value.Contains(operand, StringComparison.Ordinal),
            ValueOperator.StartsWith => value.StartsWith(operand, StringComparison.Ordinal),
            _ => value.EndsWith(operand, StringComparison.Ordinal),
        };

        public override void Write(StringBuilder text)
        {
            text.Append(Key).Append(op switch
            {
                ValueOperator.Equal => " == ",
                ValueOperator.NotEqual => " != ",
                ValueOperator.Contains => " contains ",
                ValueOperator.StartsWith => " starts with ",
                _ => " ends with ",
            });
            WriteQuoted(text, operand);
        }
    }

    /// <summary><c>in {…}</c>, or <c>not in {…}</c> (true for an absent label). The set may be empty.</summary>
    private sealed class SetNode : LabelNode
    {
        // A linear scan beats hashing for the two or three values selectors usually list.
        private const int LinearLimit = 8;

        private readonly bool _negated;
        private readonly string[] _values;
        private readonly FrozenSet<string>? _lookup;

        public SetNode(string key, bool negated, string[] sortedDistinctValues)
            : base(key, whenAbsent: negated)
        {
            _negated = negated;
            _values = sortedDistinctValues;
            _lookup = sortedDistinctValues.Length > LinearLimit ? sortedDistinctValues.ToFrozenSet(StringComparer.Ordinal) : null;
        }

        protected override bool Test(string value) => Contains(value) != _negated;

        private bool Contains(string value)
        {
            if (_lookup is not null) return _lookup.Contains(value);
            foreach (string candidate in _values)
            {
                if (string.Equals(candidate, value, StringComparison.Ordinal)) return true;
            }
            return false;
        }

        public override void Write(StringBuilder text)
        {
            text.Append(Key).Append(_negated ? " not in {" : " in {");
            for (int i = 0; i < _values.Length; i++)
            {
                if (i > 0) text.Append(", ");
                WriteQuoted(text, _values[i]);
            }
            text.Append('}');
        }
    }

    /// <summary>Calico's quoting: double quotes unless the value holds one. There are no escapes, and none are needed:
    /// a literal can only ever hold the other quote character.</summary>
    private static void WriteQuoted(StringBuilder text, string value)
    {
        char quote = value.Contains('"', StringComparison.Ordinal) ? '\'' : '"';
        text.Append(quote).Append(value).Append(quote);
    }
}
