using System.Diagnostics.CodeAnalysis;

namespace Tripline.Correlation.Policy.Calico;

internal sealed partial class CalicoSelector
{
    private enum TokenKind : byte
    {
        End,
        Label,
        String,
        LeftParen,
        RightParen,
        LeftBrace,
        RightBrace,
        Comma,
        Equal,
        NotEqual,
        Not,
        And,
        Or,
        In,
        NotIn,
        Contains,
        StartsWith,
        EndsWith,
        Has,
        All,
        Global,

        /// <summary>Text no token starts with. The parser never accepts it, so it fails there, saying what it expected.</summary>
        Invalid,
    }

    /// <summary>A token and the index it starts at; <see cref="Value"/> is the label, the literal, has()'s label, or
    /// for <see cref="TokenKind.Invalid"/> how to name the offending text.</summary>
    private readonly record struct Token(TokenKind Kind, int Start, string? Value);

    /// <summary>
    /// libcalico-go's tokenizer and recursive-descent parser, fused: the lexer runs one token ahead of the parser, so an
    /// error is the first one from the left. Go tokenizes the whole text first; the two accept exactly the same texts.
    /// </summary>
    private sealed class Parser(string text)
    {
        private const string Operators = "==, !=, in, not in, contains, starts with or ends with";

        private int _position;
        private Token _token;
        private int _depth;
        private bool _usesGlobal;

        public string? Error { get; private set; }

        public bool TryParseSelector([NotNullWhen(true)] out Node? root, out bool usesGlobal)
        {
            root = null;
            usesGlobal = false;
            if (!Advance()) return false;
            if (_token.Kind == TokenKind.End)
            {
                // "" and "  " are all(), as parser.Parse has it (Validate accepts them too).
                root = AllNode.Instance;
                return true;
            }
            if (!TryParseOr(out root)) return false;
            if (_token.Kind != TokenKind.End) return Expected("'&&', '||' or the end of the selector");
            usesGlobal = _usesGlobal;
            return true;
        }

        /// <summary><c>||</c> binds loosest: <c>a || b &amp;&amp; c</c> is <c>a || (b &amp;&amp; c)</c>.</summary>
        private bool TryParseOr([NotNullWhen(true)] out Node? node)
        {
            if (!TryParseAnd(out node)) return false;
            if (_token.Kind != TokenKind.Or) return true;
            var operands = new List<Node> { node };
            while (_token.Kind == TokenKind.Or)
            {
                if (!Advance() || !TryParseAnd(out var next)) return false;
                operands.Add(next);
            }
            node = new OrNode([.. operands]);
            return true;
        }

        private bool TryParseAnd([NotNullWhen(true)] out Node? node)
        {
            if (!TryParseUnary(out node)) return false;
            if (_token.Kind != TokenKind.And) return true;
            var operands = new List<Node> { node };
            while (_token.Kind == TokenKind.And)
            {
                if (!Advance() || !TryParseUnary(out var next)) return false;
                operands.Add(next);
            }
            node = new AndNode([.. operands]);
            return true;
        }

        /// <summary>
        /// Any run of <c>!</c> and one term. <c>!</c> takes a single term, so <c>!a == 'x'</c> is <c>!(a == 'x')</c>, and
        /// a run collapses by parity as in Calico (<c>!!has(a)</c> is <c>has(a)</c>, also in the canonical text).
        /// </summary>
        private bool TryParseUnary([NotNullWhen(true)] out Node? node)
        {
            node = null;
            bool negated = false;
            while (_token.Kind == TokenKind.Not)
            {
                negated = !negated;
                if (!Advance()) return false;
            }
            switch (_token.Kind)
            {
                case TokenKind.Has:
                    node = new HasNode(_token.Value!);
                    if (!Advance()) return false;
                    break;
                case TokenKind.All:
                    node = AllNode.Instance;
                    if (!Advance()) return false;
                    break;
                case TokenKind.Global:
                    node = GlobalNode.Instance;
                    _usesGlobal = true;
                    if (!Advance()) return false;
                    break;
                case TokenKind.Label:
                    if (!TryParseLabelTest(out node)) return false;
                    break;
                case TokenKind.LeftParen:
                    int open = _token.Start;
                    if (++_depth > MaxNesting) return Fail($"parentheses nested more than {MaxNesting} deep at column {open + 1}");
                    if (!Advance() || !TryParseOr(out node)) return false;
                    if (_token.Kind != TokenKind.RightParen) return Expected($"'&&', '||' or ')' (for the '(' at column {open + 1})");
                    _depth--;
                    if (!Advance()) return false;
                    break;
                default:
                    return Expected("a label, has(…), all(), global(), '!' or '('");
            }
            if (negated) node = new NotNode(node);
            return true;
        }

        private bool TryParseLabelTest([NotNullWhen(true)] out Node? node)
        {
            node = null;
            string key = _token.Value!;
            if (!Advance()) return false;
            TokenKind op = _token.Kind;
            switch (op)
            {
                case TokenKind.Equal or TokenKind.NotEqual or TokenKind.Contains or TokenKind.StartsWith or TokenKind.EndsWith:
                    if (!Advance()) return false;
                    // Values are only ever literals: `b == b` and `'b' == b` are both errors.
                    if (_token.Kind != TokenKind.String) return Expected($"a quoted value after '{Spell(op)}'");
                    var valueOperator = op switch
                    {
                        TokenKind.Equal => ValueOperator.Equal,
                        TokenKind.NotEqual => ValueOperator.NotEqual,
                        TokenKind.Contains => ValueOperator.Contains,
                        TokenKind.StartsWith => ValueOperator.StartsWith,
                        _ => ValueOperator.EndsWith,
                    };
                    node = new ValueNode(key, valueOperator, _token.Value!);
                    return Advance();
                case TokenKind.In or TokenKind.NotIn:
                    if (!Advance()) return false;
                    if (_token.Kind != TokenKind.LeftBrace) return Expected($"'{{' to open the set after '{Spell(op)}'");
                    if (!Advance()) return false;
                    // Calico's loop: the set may be empty, and a comma may follow the last value ({'a',}).
                    var values = new List<string>();
                    bool afterValue = false;
                    while (_token.Kind == TokenKind.String)
                    {
                        values.Add(_token.Value!);
                        if (!Advance()) return false;
                        afterValue = _token.Kind != TokenKind.Comma;
                        if (afterValue) break;
                        if (!Advance()) return false;
                    }
                    if (_token.Kind != TokenKind.RightBrace) return Expected(afterValue ? "',' or '}' in the set" : "a quoted value or '}' in the set");
                    node = new SetNode(key, op == TokenKind.NotIn, SortedDistinct(values));
                    return Advance();
                default:
                    return Expected($"an operator ({Operators}) after label '{Shorten(key)}'");
            }
        }

        /// <summary>
        /// Moves to the next token. Only space and TAB separate tokens: a line break is an error, including the one a YAML
        /// block scalar (<c>|</c>, <c>&gt;</c>) leaves at the end.
        /// </summary>
        private bool Advance()
        {
            // Calico reads operator words only right after a label, so `in in {'in'}` is a label, an operator, a set.
            bool afterLabel = _token.Kind == TokenKind.Label;
            _position = SkipBlanks(_position);
            int start = _position;
            if ((uint)start >= (uint)text.Length)
            {
                _token = new Token(TokenKind.End, start, null);
                return true;
            }
            char c = text[start];
            switch (c)
            {
                case '(': return Single(TokenKind.LeftParen);
                case ')': return Single(TokenKind.RightParen);
                case '{': return Single(TokenKind.LeftBrace);
                case '}': return Single(TokenKind.RightBrace);
                case ',': return Single(TokenKind.Comma);
                case '"' or '\'':
                    // Everything up to the same quote again: no escapes, so "'" and '"' are fine and "a\"b" is not.
                    int close = text.IndexOf(c, start + 1);
                    if (close < 0) return Fail($"unterminated string starting at column {start + 1}: expected a closing {c}");
                    _token = new Token(TokenKind.String, start, text[(start + 1)..close]);
                    _position = close + 1;
                    return true;
                case '=': return Pair('=', TokenKind.Equal, TokenKind.Invalid, "a single '='");
                case '!': return Pair('=', TokenKind.NotEqual, TokenKind.Not, null);
                case '&': return Pair('&', TokenKind.And, TokenKind.Invalid, "a single '&'");
                case '|': return Pair('|', TokenKind.Or, TokenKind.Invalid, "a single '|'");
                default:
                    return afterLabel ? LexOperator(start) : LexWord(start);
            }
        }

        private bool Single(TokenKind kind)
        {
            _token = new Token(kind, _position, null);
            _position++;
            return true;
        }

        /// <summary>A two-character token (<c>==</c>, <c>!=</c>, <c>&amp;&amp;</c>, <c>||</c>), or what its first character is alone.</summary>
        private bool Pair(char second, TokenKind pair, TokenKind alone, string? aloneDescription)
        {
            int start = _position;
            bool both = start + 1 < text.Length && text[start + 1] == second;
            _token = new Token(both ? pair : alone, start, aloneDescription);
            _position = start + (both ? 2 : 1);
            return true;
        }

        /// <summary>
        /// After a label: <c>contains</c>, <c>starts with</c>, <c>ends with</c>, <c>not in</c>, <c>in</c>, tried in
        /// Calico's order. Blanks between two words are optional (<c>startswith</c>, <c>notin</c>), and the operator must
        /// end at a word boundary (<c>inf</c>, <c>ends withs</c> are not operators).
        /// </summary>
        private bool LexOperator(int start)
        {
            int end;
            TokenKind kind;
            if ((end = MatchOperator(start, "contains", null)) >= 0) kind = TokenKind.Contains;
            else if ((end = MatchOperator(start, "starts", "with")) >= 0) kind = TokenKind.StartsWith;
            else if ((end = MatchOperator(start, "ends", "with")) >= 0) kind = TokenKind.EndsWith;
            else if ((end = MatchOperator(start, "not", "in")) >= 0) kind = TokenKind.NotIn;
            else if ((end = MatchOperator(start, "in", null)) >= 0) kind = TokenKind.In;
            else
            {
                // Not an operator: the parser, which wants one after a label, reports it.
                int wordEnd = IdentifierEnd(start);
                _token = wordEnd > start
                    ? new Token(TokenKind.Invalid, start, $"'{Shorten(text[start..wordEnd])}'")
                    : new Token(TokenKind.Invalid, start, DescribeCharacter(text[start]));
                _position = Math.Max(wordEnd, start + 1);
                return true;
            }
            _token = new Token(kind, start, null);
            _position = end;
            return true;
        }

        private int MatchOperator(int start, string first, string? second)
        {
            if (!text.AsSpan(start).StartsWith(first, StringComparison.Ordinal)) return -1;
            int end = start + first.Length;
            if (second is not null)
            {
                // As Calico does it: blanks are skipped after each word of a two-word operator, before the boundary check.
                end = SkipBlanks(end);
                if (!text.AsSpan(end).StartsWith(second, StringComparison.Ordinal)) return -1;
                end = SkipBlanks(end + second.Length);
            }
            return (uint)end < (uint)text.Length && IsLabelChar(text[end]) ? -1 : end;
        }

        /// <summary>
        /// Not after a label: <c>has(k)</c>, <c>all()</c>, <c>global()</c>, or a label. The function names must be
        /// followed at once by <c>(</c>; <c>has (a)</c> is the label <c>has</c> and then an error. Keywords are not
        /// reserved: <c>all == 'x'</c> and <c>has(in)</c> are fine.
        /// </summary>
        private bool LexWord(int start)
        {
            var rest = text.AsSpan(start);
            if (rest.StartsWith("has(", StringComparison.Ordinal))
            {
                int labelStart = SkipBlanks(start + 4);
                int labelEnd = IdentifierEnd(labelStart);
                if (labelEnd == labelStart) return Fail($"expected a label in has( at column {labelStart + 1}, found {DescribeAt(labelStart)}");
                if (labelEnd - labelStart > MaxLabelLength) return LabelTooLong(labelStart, labelEnd);
                int close = SkipBlanks(labelEnd);
                if ((uint)close >= (uint)text.Length || text[close] != ')') return Fail($"expected ')' to close has( at column {close + 1}, found {DescribeAt(close)}");
                _token = new Token(TokenKind.Has, start, text[labelStart..labelEnd]);
                _position = close + 1;
                return true;
            }
            if (rest.StartsWith("all(", StringComparison.Ordinal)) return EmptyCall(start, "all(", TokenKind.All);
            if (rest.StartsWith("global(", StringComparison.Ordinal)) return EmptyCall(start, "global(", TokenKind.Global);

            int end = IdentifierEnd(start);
            if (end == start)
            {
                _token = new Token(TokenKind.Invalid, start, DescribeCharacter(text[start]));
                _position = start + 1;
                return true;
            }
            if (end - start > MaxLabelLength) return LabelTooLong(start, end);
            _token = new Token(TokenKind.Label, start, text[start..end]);
            _position = end;
            return true;
        }

        private bool EmptyCall(int start, string opening, TokenKind kind)
        {
            int close = SkipBlanks(start + opening.Length);
            if ((uint)close >= (uint)text.Length || text[close] != ')') return Fail($"expected ')' to close {opening} at column {close + 1}, found {DescribeAt(close)}");
            _token = new Token(kind, start, null);
            _position = close + 1;
            return true;
        }

        private bool LabelTooLong(int start, int end) =>
            Fail($"label at column {start + 1} is {end - start} characters long; Calico accepts at most {MaxLabelLength}");

        private int SkipBlanks(int position)
        {
            while ((uint)position < (uint)text.Length && text[position] is ' ' or '\t') position++;
            return position;
        }

        private int IdentifierEnd(int position)
        {
            while ((uint)position < (uint)text.Length && IsLabelChar(text[position])) position++;
            return position;
        }

        /// <summary>
        /// Calico's label characters. It does not check Kubernetes' key syntax: <c>a/b/c</c>, <c>.x</c> and <c>-</c> are
        /// labels; <c>:</c>, <c>@</c> and <c>+</c> are not.
        /// </summary>
        private static bool IsLabelChar(char c) =>
            char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '/' or '-';

        private bool Expected(string what) => Fail($"expected {what} at column {_token.Start + 1}, found {Describe(_token)}");

        private bool Fail(string error)
        {
            Error = error;
            return false;
        }

        private string DescribeAt(int position) =>
            (uint)position >= (uint)text.Length ? "the end of the selector" : DescribeCharacter(text[position]);

        private static string Describe(Token token) => token.Kind switch
        {
            TokenKind.End => "the end of the selector",
            TokenKind.Label => $"label '{Shorten(token.Value!)}'",
            TokenKind.String => "the string " + Quote(Shorten(token.Value!)),
            TokenKind.Has => $"has({Shorten(token.Value!)})",
            TokenKind.Invalid => token.Value!,
            _ => $"'{Spell(token.Kind)}'",
        };

        private static string DescribeCharacter(char c) => c switch
        {
            '\n' => "a line break (only spaces and tabs may separate tokens)",
            '\r' => "a carriage return (only spaces and tabs may separate tokens)",
            >= '!' and <= '~' => $"'{c}'",
            _ => $"the character U+{(int)c:X4}",
        };

        private static string Spell(TokenKind kind) => kind switch
        {
            TokenKind.LeftParen => "(",
            TokenKind.RightParen => ")",
            TokenKind.LeftBrace => "{",
            TokenKind.RightBrace => "}",
            TokenKind.Comma => ",",
            TokenKind.Equal => "==",
            TokenKind.NotEqual => "!=",
            TokenKind.Not => "!",
            TokenKind.And => "&&",
            TokenKind.Or => "||",
            TokenKind.In => "in",
            TokenKind.NotIn => "not in",
            TokenKind.Contains => "contains",
            TokenKind.StartsWith => "starts with",
            TokenKind.EndsWith => "ends with",
            TokenKind.All => "all()",
            TokenKind.Global => "global()",
            _ => kind.ToString(),
        };

        private static string Quote(string value)
        {
            char quote = value.Contains('"', StringComparison.Ordinal) ? '\'' : '"';
            return quote + value + quote;
        }

        /// <summary>Keeps an error message readable when the offending label or literal is hundreds of characters long.</summary>
        private static string Shorten(string value) => value.Length <= 64 ? value : string.Concat(value.AsSpan(0, 61), "...");
    }

    /// <summary>Sorted and de-duplicated, as Calico's canonical form lists a set.</summary>
    private static string[] SortedDistinct(List<string> values)
    {
        values.Sort(CompareAsUtf8);
        var distinct = new List<string>(values.Count);
        foreach (string value in values)
        {
            if (distinct.Count == 0 || !string.Equals(distinct[^1], value, StringComparison.Ordinal)) distinct.Add(value);
        }
        return [.. distinct];
    }

    /// <summary>
    /// Go sorts strings by their UTF-8 bytes, which is code point order. Ordinal UTF-16 order differs only where a
    /// surrogate pair (U+10000 and up) meets U+E000–U+FFFF; lifting surrogates above that range fixes it.
    /// </summary>
    private static int CompareAsUtf8(string? a, string? b)
    {
        if (a is null || b is null) return a is null ? (b is null ? 0 : -1) : 1;
        int length = Math.Min(a.Length, b.Length);
        for (int i = 0; i < length; i++)
        {
            if (a[i] != b[i]) return InCodePointOrder(a[i]) - InCodePointOrder(b[i]);
        }
        return a.Length - b.Length;
    }

    private static int InCodePointOrder(char c) => c < 0xD800 ? c : c < 0xE000 ? c + 0x2000 : c - 0x800;
}
