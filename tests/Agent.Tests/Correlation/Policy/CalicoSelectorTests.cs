using System.Text;
using System.Text.Json;
using Tripline.Correlation.Cluster;
using Tripline.Correlation.Policy.Calico;

namespace Tripline.Tests.Correlation.Policy;

public sealed class CalicoSelectorTests
{
    public static TheoryData<int> MatchCases() => Lines(c => !c.Error);

    public static TheoryData<int> ErrorCases() => Lines(c => c.Error);

    private static TheoryData<int> Lines(Func<CalicoSelectorCase, bool> filter)
    {
        var data = new TheoryData<int>();
        foreach (var (line, c) in CalicoSelectorCase.ByLine)
        {
            if (filter(c)) data.Add(line);
        }
        return data;
    }

    private static LabelSet Labels(params (string Key, string Value)[] labels) =>
        LabelSet.Intern(labels.ToDictionary(l => l.Key, l => l.Value));

    private static CalicoSelector Parse(string text)
    {
        Assert.True(CalicoSelector.TryParse(text, out var selector, out string? error), $"{text}: {error}");
        return selector;
    }

    private static string ErrorOf(string text)
    {
        Assert.False(CalicoSelector.TryParse(text, out var selector, out string? error), $"{text} parsed as {selector}");
        return error;
    }

    [Fact]
    public void Fixture_HasEveryTranscribedCase()
    {
        // A truncated or mangled fixture would otherwise pass with fewer rows.
        Assert.Equal(160, CalicoSelectorCase.ByLine.Values.Count(c => !c.Error));
        Assert.Equal(62, CalicoSelectorCase.ByLine.Values.Count(c => c.Error));
    }

    [Theory]
    [MemberData(nameof(MatchCases))]
    public void Matches_FixtureCase_AgreesWithCalico(int line)
    {
        var c = CalicoSelectorCase.ByLine[line];
        var labels = LabelSet.Intern(c.Labels);
        var selector = Parse(c.Selector);
        Assert.Equal(c.Match, selector.Matches(labels));

        // Calico's own tests check the canonical text too: it parses back, to itself, with the same answer.
        var canonical = Parse(selector.ToString());
        Assert.Equal(selector.ToString(), canonical.ToString());
        Assert.Equal(c.Match, canonical.Matches(labels));
    }

    [Theory]
    [MemberData(nameof(ErrorCases))]
    public void TryParse_FixtureInvalidCase_FailsNamingAColumn(int line)
    {
        string error = ErrorOf(CalicoSelectorCase.ByLine[line].Selector);
        Assert.Matches("column [0-9]+", error);
    }

    [Fact]
    public void TryParse_DifferentialCorpus_AgreesWithLibcalicoGo()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Correlation", "Policy", "Fixtures", "calico", "selector-differential.jsonl");
        var problems = new List<string>();
        int count = 0, valid = 0;
        foreach (string line in File.ReadLines(path))
        {
            count++;
            using var document = JsonDocument.Parse(line);
            var entry = document.RootElement;
            string text = entry.GetProperty("selector").GetString()!;
            string shown = JsonSerializer.Serialize(text);
            bool parsed = CalicoSelector.TryParse(text, out var selector, out string? error);
            if (parsed != entry.GetProperty("valid").GetBoolean())
            {
                problems.Add($"line {count} {shown}: Calico {(parsed ? "rejects it" : "accepts it")}; here {(parsed ? "accepted" : error)}");
                continue;
            }
            if (!parsed) continue;
            valid++;
            string canonical = entry.GetProperty("canonical").GetString()!;
            if (selector!.ToString() != canonical) problems.Add($"line {count} {shown}: Calico writes {canonical}, here {selector}");
            foreach (var c in entry.GetProperty("cases").EnumerateArray())
            {
                var labels = LabelSet.Intern(c.GetProperty("labels").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!));
                if (selector.Matches(labels) != c.GetProperty("match").GetBoolean()) problems.Add($"line {count} {shown}: differs on {{{labels}}}");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.Equal((1500, 599), (count, valid));
    }

    [Theory]
    // libcalico-go parser_test.go, canonicalisationTests.
    [InlineData("", "all()")]
    [InlineData(" all() ", "all()")]
    [InlineData(" (all() )", "all()")]
    [InlineData("! (has( b)||! has(a ))", "!(has(b) || !has(a))")]
    [InlineData("! (a == \"b\"&&! c != \"d\")", "!(a == \"b\" && !c != \"d\")")]
    [InlineData("a == \"'\"", "a == \"'\"")]
    [InlineData("a == '\"'", "a == '\"'")]
    [InlineData("a contains '\"'", "a contains '\"'")]
    [InlineData("a contains \"'\"", "a contains \"'\"")]
    [InlineData("a startswith '\"'", "a starts with '\"'")]
    [InlineData("a endswith \"'\"", "a ends with \"'\"")]
    [InlineData("a!='\"'", "a != '\"'")]
    [InlineData("a in {\"d\"}", "a in {\"d\"}")]
    [InlineData("a in {\"a\", \"b\"}", "a in {\"a\", \"b\"}")]
    [InlineData("a in {\"d\", \"a\", \"b\"}", "a in {\"a\", \"b\", \"d\"}")]
    [InlineData("a in {\"z\", \"x\", \"y\", \"a\"}", "a in {\"a\", \"x\", \"y\", \"z\"}")]
    [InlineData("a in {\"z\", \"z\", \"x\", \"y\", \"x\", \"a\"}", "a in {\"a\", \"x\", \"y\", \"z\"}")]
    // Own: single quotes become double, runs of ! collapse, blanks and spellings normalise.
    [InlineData("a == 'b'", "a == \"b\"")]
    [InlineData("!!has(a)", "has(a)")]
    [InlineData("!!!has(a)", "!has(a)")]
    [InlineData("a\tnotin\t{}", "a not in {}")]
    [InlineData("a in {'x',}", "a in {\"x\"}")]
    [InlineData("a starts  with''", "a starts with \"\"")]
    [InlineData("((has(a)))", "has(a)")]
    [InlineData("global()", "global()")]
    public void ToString_ParsedSelector_IsCalicosCanonicalText(string text, string canonical)
    {
        var selector = Parse(text);
        Assert.Equal(canonical, selector.ToString());
        Assert.Equal(canonical, Parse(canonical).ToString());
    }

    [Fact]
    public void ToString_NegatedNegation_KeepsBothAsCalicoDoes()
    {
        // `!` runs collapse by parity, but a `!` outside parentheses and one inside are two nodes, and Calico's String()
        // writes both; the text then reads back as the un-negated term. Same answers either way.
        var selector = Parse("!(!has(a))");
        Assert.Equal("!!has(a)", selector.ToString());
        Assert.Equal("has(a)", Parse(selector.ToString()).ToString());
        Assert.True(selector.Matches(Labels(("a", "1"))));
        Assert.False(selector.Matches(LabelSet.Empty));
    }

    [Theory]
    // && binds tighter than ||, on either side.
    [InlineData("has(a) || has(b) && has(c)", "(has(a) || (has(b) && has(c)))")]
    [InlineData("has(a) && has(b) || has(c)", "((has(a) && has(b)) || has(c))")]
    [InlineData("has(a) && has(b) && has(c) || has(d) || has(e) && has(f)", "((has(a) && has(b) && has(c)) || has(d) || (has(e) && has(f)))")]
    // ! takes one term: a comparison, has(), or a parenthesised group.
    [InlineData("!a == 'x' && b == 'y'", "(!a == \"x\" && b == \"y\")")]
    [InlineData("!a in {'x'} || has(b)", "(!a in {\"x\"} || has(b))")]
    [InlineData("!(has(a) || has(b)) && has(c)", "(!(has(a) || has(b)) && has(c))")]
    [InlineData("!has(a) || has(b)", "(!has(a) || has(b))")]
    // Parentheses override.
    [InlineData("(has(a) || has(b)) && has(c)", "((has(a) || has(b)) && has(c))")]
    // The documentation's example.
    [InlineData("! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
        "(!has(my-label) || (my-label starts with \"prod\" && role in {\"business\", \"frontend\"}))")]
    public void TryParse_Operators_GroupAsCalicosParser(string text, string grouped) =>
        Assert.Equal(grouped, Parse(text).ToString());

    [Fact]
    public void Matches_OrBelowAnd_DecidesTheAnswer()
    {
        var onlyA = Labels(("a", "1"));
        Assert.True(Parse("has(a) || has(b) && has(c)").Matches(onlyA));
        Assert.False(Parse("(has(a) || has(b)) && has(c)").Matches(onlyA));
        // !a == 'x' is !(a == 'x'), not (!a) == 'x': true when a is absent.
        Assert.True(Parse("!a == 'x'").Matches(LabelSet.Empty));
    }

    [Theory]
    [InlineData("a == \"b", "unterminated string starting at column 6: expected a closing \"")]
    [InlineData("a == 'b\"", "unterminated string starting at column 6: expected a closing '")]
    [InlineData("(a == 'b'", "expected '&&', '||' or ')' (for the '(' at column 1) at column 10, found the end of the selector")]
    [InlineData("((has(a)) || (has(b)", "expected '&&', '||' or ')' (for the '(' at column 14) at column 21, found the end of the selector")]
    [InlineData("has(a))", "expected '&&', '||' or the end of the selector at column 7, found ')'")]
    [InlineData(")", "expected a label, has(…), all(), global(), '!' or '(' at column 1, found ')'")]
    [InlineData("()", "expected a label, has(…), all(), global(), '!' or '(' at column 2, found ')'")]
    [InlineData("has(a) && ", "expected a label, has(…), all(), global(), '!' or '(' at column 11, found the end of the selector")]
    [InlineData("a == \"b\" && %", "expected a label, has(…), all(), global(), '!' or '(' at column 13, found '%'")]
    [InlineData("a = 'b'", "expected an operator (==, !=, in, not in, contains, starts with or ends with) after label 'a' at column 3, found a single '='")]
    [InlineData("k === 'v'", "expected a quoted value after '==' at column 5, found a single '='")]
    [InlineData("k =~ 'v'", "expected an operator (==, !=, in, not in, contains, starts with or ends with) after label 'k' at column 3, found a single '='")]
    [InlineData("a == 'b' & has(c)", "expected '&&', '||' or the end of the selector at column 10, found a single '&'")]
    [InlineData("a == 'b' | has(c)", "expected '&&', '||' or the end of the selector at column 10, found a single '|'")]
    [InlineData("label squiggles 'v'", "after label 'label' at column 7, found 'squiggles'")]
    [InlineData("label inf 'v'", "after label 'label' at column 7, found 'inf'")]
    [InlineData("label ends withs 'v'", "after label 'label' at column 7, found 'ends'")]
    [InlineData("k@x == 'v'", "after label 'k' at column 2, found '@'")]
    [InlineData("b == b", "expected a quoted value after '==' at column 6, found label 'b'")]
    [InlineData("'b1' == b", "expected a label, has(…), all(), global(), '!' or '(' at column 1, found the string \"b1\"")]
    [InlineData("k startswith", "expected a quoted value after 'starts with' at column 13, found the end of the selector")]
    [InlineData("a", "after label 'a' at column 2, found the end of the selector")]
    [InlineData("a in 'x'", "expected '{' to open the set after 'in' at column 6, found the string \"x\"")]
    [InlineData("a not in ('x')", "expected '{' to open the set after 'not in' at column 10, found '('")]
    [InlineData("k in {'a' 'b'}", "expected ',' or '}' in the set at column 11, found the string \"b\"")]
    [InlineData("k in {'a',,}", "expected a quoted value or '}' in the set at column 11, found ','")]
    [InlineData("k in {a}", "expected a quoted value or '}' in the set at column 7, found label 'a'")]
    [InlineData("k in {'a'", "expected ',' or '}' in the set at column 10, found the end of the selector")]
    [InlineData("has()", "expected a label in has( at column 5, found ')'")]
    [InlineData("has( foo ", "expected ')' to close has( at column 10, found the end of the selector")]
    [InlineData("has (k)", "after label 'has' at column 5, found '('")]
    [InlineData("all(", "expected ')' to close all( at column 5, found the end of the selector")]
    [InlineData("global( x)", "expected ')' to close global( at column 9, found 'x'")]
    [InlineData("!", "expected a label, has(…), all(), global(), '!' or '(' at column 2, found the end of the selector")]
    [InlineData("has(a) and has(b)", "expected '&&', '||' or the end of the selector at column 8, found label 'and'")]
    [InlineData("k == 'v'\n", "expected '&&', '||' or the end of the selector at column 9, found a line break (only spaces and tabs may separate tokens)")]
    [InlineData("k ==\r\n'v'", "expected a quoted value after '==' at column 5, found a carriage return")]
    [InlineData("k == 'v' && ä == 'x'", "at column 13, found the character U+00E4")]
    public void TryParse_MalformedSelector_NamesTheColumnAndWhatWasExpected(string text, string expected) =>
        Assert.Contains(expected, ErrorOf(text));

    [Fact]
    public void TryParse_LabelOf512Characters_IsAcceptedAnd513Refused()
    {
        string key = new('k', CalicoSelector.MaxLabelLength);
        Assert.True(Parse($"{key} == 'v'").Matches(Labels((key, "v"))));
        Assert.True(Parse($"has({key})").Matches(Labels((key, "v"))));
        Assert.Contains("label at column 1 is 513 characters long; Calico accepts at most 512", ErrorOf($"{key}k == 'v'"));
        Assert.Contains("label at column 6 is 513 characters long", ErrorOf($"has( {key}k)"));
    }

    [Fact]
    public void TryParse_DeeplyNestedParentheses_AreRefusedPastTheLimitInsteadOfOverflowingTheStack()
    {
        int limit = CalicoSelector.MaxNesting;
        var deepest = Parse(new string('(', limit) + "has(a)" + new string(')', limit));
        Assert.Equal("has(a)", deepest.ToString());
        Assert.Contains($"parentheses nested more than {limit} deep at column {limit + 1}", ErrorOf(new string('(', limit + 1) + "has(a)" + new string(')', limit + 1)));
        // Nesting counts depth, not the number of groups.
        Assert.True(CalicoSelector.TryParse(string.Join(" && ", Enumerable.Repeat("(has(a))", 1000)), out _, out _));
        Assert.False(CalicoSelector.TryParse(new string('(', 100_000), out _, out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData(" \t ")]
    public void TryParse_EmptyOrBlank_IsAll(string text)
    {
        var selector = Parse(text);
        Assert.Same(CalicoSelector.All, selector);
        Assert.Equal("all()", selector.ToString());
        Assert.True(selector.Matches(LabelSet.Empty));
        Assert.True(selector.Matches(Labels(("a", "b"))));
        Assert.False(selector.UsesGlobal);
    }

    [Theory]
    [InlineData("global()", true)]
    [InlineData("has(a) && !global()", true)]
    [InlineData("(has(a) || (global()))", true)]
    [InlineData("all()", false)]
    [InlineData("global == 'x'", false)]
    [InlineData("has(global)", false)]
    [InlineData("", false)]
    public void UsesGlobal_SaysWhetherGlobalAppears(string text, bool usesGlobal) =>
        Assert.Equal(usesGlobal, Parse(text).UsesGlobal);

    [Fact]
    public void Matches_Global_IsTrueInsideTheLanguage()
    {
        // libcalico-go evaluates global() as true; its meaning comes from the policy compiler's rewrite.
        Assert.True(Parse("global()").Matches(LabelSet.Empty));
        Assert.False(Parse("!global()").Matches(LabelSet.Empty));
    }

    [Fact]
    public void ToString_SetValues_SortInCalicosByteOrder()
    {
        // Go sorts UTF-8 bytes (code points): U+FFFD before an emoji, though UTF-16 ordinal order puts it after.
        var selector = Parse("a in {'\U0001F600', '\uFFFD', 'z', 'Z', '\uFFFD'}");
        Assert.Equal("a in {\"Z\", \"z\", \"\uFFFD\", \"\U0001F600\"}", selector.ToString());
        Assert.True(selector.Matches(Labels(("a", "\U0001F600"))));
        Assert.False(selector.Matches(Labels(("a", "\uD83D"))));
    }

    [Fact]
    public void Matches_LargeSet_FindsEveryMemberAndNothingElse()
    {
        string[] values = [.. Enumerable.Range(0, 50).Select(i => $"v{i}")];
        var inSet = Parse($"a in {{{string.Join(",", values.Select(v => $"'{v}'"))}}}");
        var notInSet = Parse($"a not in {{{string.Join(",", values.Select(v => $"'{v}'"))}}}");
        foreach (string value in values)
        {
            Assert.True(inSet.Matches(Labels(("a", value))));
            Assert.False(notInSet.Matches(Labels(("a", value))));
        }
        Assert.False(inSet.Matches(Labels(("a", "v50"))));
        Assert.True(notInSet.Matches(Labels(("a", "v50"))));
        Assert.False(inSet.Matches(LabelSet.Empty));
        Assert.True(notInSet.Matches(LabelSet.Empty));
    }

    [Fact]
    public void Matches_EveryKindOfTerm_DoesNotAllocate()
    {
        string large = string.Join(", ", Enumerable.Range(0, 20).Select(i => $"'v{i}'"));
        var selector = Parse(
            $"(app == 'web' || app != 'db') && !has(canary) && tier in {{'a','b'}} && env not in {{{large}}} " +
            "&& name contains 'x' && name starts with 'n' && name ends with 'e' || all() && !global() || zone in {" + large + "}");
        LabelSet[] sets =
        [
            Labels(("app", "web"), ("tier", "a"), ("name", "nxe")),
            Labels(("app", "db"), ("zone", "v19")),
            Labels(("canary", "")),
            LabelSet.Empty,
        ];
        // The first passes compile the loop and tier the methods up, which can allocate (type loads); the steady state
        // is what must not allocate. A per-call allocation shows in every pass.
        var passes = new List<long>();
        for (int pass = 0; pass < 5 && (passes.Count == 0 || passes[^1] != 0); pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            MatchMany(selector, sets, 1000);
            passes.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(passes[^1] == 0, "bytes allocated per pass of 4,000 matches: " + string.Join(", ", passes));
    }

    private static int MatchMany(CalicoSelector selector, LabelSet[] sets, int count)
    {
        int matched = 0;
        for (int i = 0; i < count; i++)
        {
            foreach (var set in sets)
            {
                if (selector.Matches(set)) matched++;
            }
        }
        return matched;
    }

    // ----- Random selectors against an independent evaluator (fixed seed) -----

    private static readonly string[] Keys = ["a", "b", "c"];
    private static readonly string[] Values = ["", "x", "xy", "yx", "y"];

    private static LabelSet RandomLabels(Random random)
    {
        var labels = new Dictionary<string, string>();
        foreach (string key in Keys)
        {
            if (random.Next(3) != 0) labels[key] = Values[random.Next(Values.Length)];
        }
        return LabelSet.Intern(labels);
    }

    [Fact]
    public void Matches_RandomSelectors_AgreeWithAReferenceEvaluatorAndTheirCanonicalText()
    {
        var random = new Random(18);
        for (int i = 0; i < 400; i++)
        {
            var expression = Expression.Random(random, depth: 3);
            string text = expression.Render(random);
            var selector = Parse(text);
            var canonical = Parse(selector.ToString());
            // One more round is a fixed point (the first may still drop a `!!`, see ToString_NegatedNegation_…).
            Assert.Equal(canonical.ToString(), Parse(canonical.ToString()).ToString());
            for (int j = 0; j < 25; j++)
            {
                var labels = RandomLabels(random);
                bool expected = expression.Evaluate(labels);
                Assert.True(expected == selector.Matches(labels), $"{text} on {{{labels}}}: expected {expected}");
                Assert.True(expected == canonical.Matches(labels), $"{selector} (from {text}) on {{{labels}}}: expected {expected}");
            }
        }
    }

    [Fact]
    public void Matches_RandomSelectors_NegationAndDeMorganHold()
    {
        var random = new Random(1818);
        for (int i = 0; i < 300; i++)
        {
            string a = Expression.Random(random, depth: 2).Render(random);
            string b = Expression.Random(random, depth: 2).Render(random);
            var left = Parse(a);
            var right = Parse(b);
            var notLeft = Parse($"!({a})");
            var doubleNot = Parse($"!!({a})");
            var notAnd = Parse($"!(({a}) && ({b}))");
            var orNots = Parse($"!({a}) || !({b})");
            var notOr = Parse($"!(({a}) || ({b}))");
            var andNots = Parse($"!({a}) && !({b})");
            for (int j = 0; j < 25; j++)
            {
                var labels = RandomLabels(random);
                string context = $"A = {a}, B = {b}, labels {{{labels}}}";
                Assert.True(notLeft.Matches(labels) == !left.Matches(labels), context);
                Assert.True(doubleNot.Matches(labels) == left.Matches(labels), context);
                Assert.True(notAnd.Matches(labels) == orNots.Matches(labels), context);
                Assert.True(notOr.Matches(labels) == andNots.Matches(labels), context);
                Assert.True(notAnd.Matches(labels) == !(left.Matches(labels) && right.Matches(labels)), context);
            }
        }
    }

    /// <summary>
    /// A selector as a tree, evaluated here straight from Calico's documented semantics, and written out with random
    /// blanks, quote styles and operator spellings.
    /// </summary>
    private abstract record Expression
    {
        public abstract bool Evaluate(LabelSet labels);

        public abstract string Render(Random random);

        public static Expression Random(Random random, int depth)
        {
            int choice = random.Next(depth > 0 ? 13 : 10);
            string key = Keys[random.Next(Keys.Length)];
            string value = Values[random.Next(Values.Length)];
            return choice switch
            {
                0 => new Has(key),
                1 => new Compare(key, "==", value),
                2 => new Compare(key, "!=", value),
                3 => new Compare(key, "contains", value),
                4 => new Compare(key, "starts with", value),
                5 => new Compare(key, "ends with", value),
                6 => new Set(key, false, [.. Enumerable.Range(0, random.Next(4)).Select(_ => Values[random.Next(Values.Length)])]),
                7 => new Set(key, true, [.. Enumerable.Range(0, random.Next(4)).Select(_ => Values[random.Next(Values.Length)])]),
                8 => random.Next(4) == 0 ? new Constant("global()") : new Constant("all()"),
                9 => new Not(Random(random, Math.Max(depth - 1, 0))),
                10 => new Not(Random(random, depth - 1)),
                11 => new Group(true, [.. Enumerable.Range(0, 2 + random.Next(2)).Select(_ => Random(random, depth - 1))]),
                _ => new Group(false, [.. Enumerable.Range(0, 2 + random.Next(2)).Select(_ => Random(random, depth - 1))]),
            };
        }

        protected static string Blank(Random random, bool required) => random.Next(required ? 3 : 4) switch
        {
            0 => " ",
            1 => "\t",
            2 => "  ",
            _ => "",
        };

        protected static string Quoted(Random random, string value) => random.Next(2) == 0 ? $"'{value}'" : $"\"{value}\"";
    }

    private sealed record Has(string Key) : Expression
    {
        public override bool Evaluate(LabelSet labels) => labels.ContainsKey(Key);

        public override string Render(Random random) => $"has({Blank(random, false)}{Key}{Blank(random, false)})";
    }

    private sealed record Constant(string Text) : Expression
    {
        public override bool Evaluate(LabelSet labels) => true;

        public override string Render(Random random) => Text.Replace("(", "(" + Blank(random, false), StringComparison.Ordinal);
    }

    private sealed record Compare(string Key, string Operator, string Value) : Expression
    {
        public override bool Evaluate(LabelSet labels)
        {
            if (!labels.TryGetValue(Key, out var actual)) return Operator == "!=";
            return Operator switch
            {
                "==" => actual == Value,
                "!=" => actual != Value,
                "contains" => actual!.Contains(Value, StringComparison.Ordinal),
                "starts with" => actual!.StartsWith(Value, StringComparison.Ordinal),
                _ => actual!.EndsWith(Value, StringComparison.Ordinal),
            };
        }

        public override string Render(Random random)
        {
            // A word operator needs a blank after the label, or the two would read as one label.
            bool word = char.IsLetter(Operator[0]);
            string spelled = Operator.Contains(' ', StringComparison.Ordinal) ? Operator.Replace(" ", Blank(random, false), StringComparison.Ordinal) : Operator;
            return $"{Key}{Blank(random, word)}{spelled}{Blank(random, false)}{Quoted(random, Value)}";
        }
    }

    private sealed record Set(string Key, bool Negated, string[] Members) : Expression
    {
        public override bool Evaluate(LabelSet labels) =>
            labels.TryGetValue(Key, out var actual) ? Members.Contains(actual) != Negated : Negated;

        public override string Render(Random random)
        {
            var text = new StringBuilder(Key).Append(Blank(random, true)).Append(Negated ? "not" + Blank(random, false) + "in" : "in").Append(Blank(random, false)).Append('{');
            for (int i = 0; i < Members.Length; i++)
            {
                if (i > 0) text.Append(',').Append(Blank(random, false));
                text.Append(Quoted(random, Members[i]));
            }
            if (Members.Length > 0 && random.Next(4) == 0) text.Append(',');
            return text.Append('}').ToString();
        }
    }

    private sealed record Not(Expression Operand) : Expression
    {
        public override bool Evaluate(LabelSet labels) => !Operand.Evaluate(labels);

        // ! takes one term, so a group needs its parentheses; a single term may or may not have them.
        public override string Render(Random random) =>
            Operand is Group || random.Next(3) == 0 ? $"!{Blank(random, false)}({Operand.Render(random)})" : $"!{Blank(random, false)}{Operand.Render(random)}";
    }

    private sealed record Group(bool And, Expression[] Operands) : Expression
    {
        public override bool Evaluate(LabelSet labels) =>
            And ? Operands.All(o => o.Evaluate(labels)) : Operands.Any(o => o.Evaluate(labels));

        public override string Render(Random random)
        {
            var text = new StringBuilder();
            for (int i = 0; i < Operands.Length; i++)
            {
                if (i > 0) text.Append(Blank(random, false)).Append(And ? "&&" : "||").Append(Blank(random, false));
                // Only an || group inside an && group needs parentheses; add them now and then anyway.
                bool parenthesise = (And && Operands[i] is Group { And: false }) || random.Next(5) == 0;
                text.Append(parenthesise ? $"({Blank(random, false)}{Operands[i].Render(random)}{Blank(random, false)})" : Operands[i].Render(random));
            }
            return text.ToString();
        }
    }
}
