using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LongContext.ReadmeCheck;

/// <summary>
/// A README block read as a program, with the conventions a reader can follow:
/// <list type="bullet">
/// <item><c>// Assumes: Tensor q, k, v; LlamaForCausalLM model</c> declares what the block uses without building it
/// (declarations separated by ';', names of one type by ','); such a block is compiled, not run.</item>
/// <item><c>// Compile-only: reason</c>: compiled, not run (it reads files the reader has and the check has not).</item>
/// <item><c>// prints 1.1386</c> at the end of a line (commentary may follow the value): the program's output must contain that value, in order with the
/// block's other <c>prints</c> (a number matches a printed number that rounds to it; text matches as a substring;
/// <c>// prints `text`</c> quotes text exactly).</item>
/// </list>
/// Every other block is compiled and run in an empty folder and must finish without an exception.
/// </summary>
internal sealed partial class Example
{
    [GeneratedRegex(@"^\s*//\s*Assumes:\s*(.+)$", RegexOptions.IgnoreCase)]
    private static partial Regex AssumesLine();

    [GeneratedRegex(@"^\s*//\s*Compile-only:\s*(.+)$", RegexOptions.IgnoreCase)]
    private static partial Regex CompileOnlyLine();

    [GeneratedRegex(@"//\s*prints\s+(`(?<text>[^`]+)`.*|(?<number>[-+]?\d[\d.]*(?:[eE][-+]?\d+)?)(\s.*)?|(?<rest>.+))$")]
    private static partial Regex PrintsComment();

    [GeneratedRegex(@"^\s*using\s+(static\s+)?[A-Za-z_][\w.]*\s*;\s*(//.*)?$|^\s*using\s+[A-Za-z_]\w*\s*=\s*[^;]+;\s*(//.*)?$")]
    private static partial Regex UsingDirective();

    private Example(CodeBlock block, string source, IReadOnlyList<string> assumed, string? compileOnlyReason, IReadOnlyList<Expectation> expected)
    {
        Block = block;
        Source = source;
        Assumed = assumed;
        CompileOnlyReason = compileOnlyReason;
        Expected = expected;
    }

    /// <summary>The markdown block.</summary>
    public CodeBlock Block { get; }

    /// <summary>The program compiled for the block, with <c>#line</c> directives back to the markdown file.</summary>
    public string Source { get; }

    /// <summary>Declarations added for the block's <c>Assumes</c> line.</summary>
    public IReadOnlyList<string> Assumed { get; }

    /// <summary>Why the block is not run; null when it runs.</summary>
    public string? CompileOnlyReason { get; }

    /// <summary>Values the block states it prints, in order.</summary>
    public IReadOnlyList<Expectation> Expected { get; }

    /// <summary>Reads a block.</summary>
    /// <exception cref="InvalidDataException">An <c>Assumes</c> line that is not a declaration list.</exception>
    public static Example From(CodeBlock block)
    {
        var assumed = new List<Assumption>();
        string? compileOnly = null;
        var expected = new List<Expectation>();
        for (int i = 0; i < block.Lines.Count; i++)
        {
            string line = block.Lines[i];
            if (AssumesLine().Match(line) is { Success: true } a) assumed.AddRange(Declarations(a.Groups[1].Value, block, i));
            if (CompileOnlyLine().Match(line) is { Success: true } c) compileOnly = c.Groups[1].Value.Trim();
            if (PrintsComment().Match(line) is { Success: true } p)
            {
                int markdownLine = block.LineOf(i);
                if (p.Groups["text"].Success) expected.Add(new Expectation(p.Groups["text"].Value, null, markdownLine));
                else if (p.Groups["number"].Success) expected.Add(new Expectation(p.Groups["number"].Value, Decimals(p.Groups["number"].Value), markdownLine));
                else expected.Add(new Expectation(p.Groups["rest"].Value.Trim(), null, markdownLine));
            }
        }
        if (assumed.Count > 0) compileOnly ??= "it assumes " + string.Join(", ", assumed.Select(d => d.Name));
        return new Example(block, Program(block, assumed), assumed.Select(d => d.Declaration).ToList(), compileOnly, expected);
    }

    /// <summary>Usings first (as C# requires), then the assumed declarations (each mapped to its <c>Assumes</c> line, so
    /// an unknown type there is reported on that line), then the rest; each original line keeps its markdown line
    /// number through <c>#line</c>.</summary>
    private static string Program(CodeBlock block, List<Assumption> assumed)
    {
        var sb = new StringBuilder();
        string file = block.File.Replace("\"", "", StringComparison.Ordinal);
        int firstStatement = 0;
        while (firstStatement < block.Lines.Count)
        {
            string t = block.Lines[firstStatement].Trim();
            if (t.Length == 0 || t.StartsWith("//", StringComparison.Ordinal) || UsingDirective().IsMatch(t)) firstStatement++;
            else break;
        }
        sb.Append(CultureInfo.InvariantCulture, $"#line {block.LineOf(0)} \"{file}\"\n");
        for (int i = 0; i < firstStatement; i++) sb.Append(block.Lines[i]).Append('\n');
        foreach (Assumption d in assumed)
            sb.Append(CultureInfo.InvariantCulture, $"#line {d.Line} \"{file}\"\n").Append(d.Declaration).Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"#line {block.LineOf(firstStatement)} \"{file}\"\n");
        for (int i = firstStatement; i < block.Lines.Count; i++) sb.Append(block.Lines[i]).Append('\n');
        return sb.ToString();
    }

    /// <summary><c>Tensor q, k; Dictionary&lt;string, Tensor&gt; d</c> into <c>Tensor q = default!;</c> ...</summary>
    private static IEnumerable<Assumption> Declarations(string list, CodeBlock block, int index)
    {
        foreach (string part in SplitTopLevel(list, ';'))
        {
            string declaration = part.Trim();
            if (declaration.Length == 0) continue;
            int split = LastTopLevelSpaceBeforeNames(declaration);
            if (split <= 0)
                throw new InvalidDataException($"{block.File}:{block.LineOf(index)}: '// Assumes:' expects 'Type name[, name]; ...'; got '{declaration}'.");
            string type = declaration[..split].Trim();
            foreach (string name in SplitTopLevel(declaration[split..], ','))
            {
                string n = name.Trim();
                if (!Regex.IsMatch(n, @"^@?[A-Za-z_]\w*$"))
                    throw new InvalidDataException($"{block.File}:{block.LineOf(index)}: '// Assumes:' name '{n}' in '{declaration}' is not an identifier.");
                yield return new Assumption($"{type} {n} = default!;", n, block.LineOf(index));
            }
        }
    }

    /// <summary>The position of the space between the type and the first name (outside generic brackets).</summary>
    private static int LastTopLevelSpaceBeforeNames(string declaration)
    {
        int depth = 0, lastSpace = -1;
        for (int i = 0; i < declaration.Length; i++)
        {
            char c = declaration[i];
            if (c is '<' or '(' or '[') depth++;
            else if (c is '>' or ')' or ']') depth--;
            else if (c == ',' && depth == 0) break;
            else if (c == ' ' && depth == 0 && i > 0 && declaration[i - 1] != ',') lastSpace = i;
        }
        return lastSpace;
    }

    private static IEnumerable<string> SplitTopLevel(string text, char separator)
    {
        int depth = 0, start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c is '<' or '(' or '[') depth++;
            else if (c is '>' or ')' or ']') depth--;
            else if (c == separator && depth == 0)
            {
                yield return text[start..i];
                start = i + 1;
            }
        }
        yield return text[start..];
    }

    private static int Decimals(string number)
    {
        int dot = number.IndexOf('.', StringComparison.Ordinal);
        int exponent = number.IndexOfAny(['e', 'E']);
        if (dot < 0) return 0;
        return (exponent < 0 ? number.Length : exponent) - dot - 1;
    }
}

/// <summary>A variable an <c>Assumes</c> line declares.</summary>
/// <param name="Declaration">The C# declaration (<c>Tensor q = default!;</c>).</param>
/// <param name="Name">The variable's name.</param>
/// <param name="Line">Markdown line of the <c>Assumes</c> comment.</param>
internal sealed record Assumption(string Declaration, string Name, int Line);

/// <summary>A value a block states it prints.</summary>
/// <param name="Text">The number or text.</param>
/// <param name="Decimals">For a number, how many decimals it states (the printed value must round to it); null for text.</param>
/// <param name="Line">Markdown line of the statement.</param>
internal sealed record Expectation(string Text, int? Decimals, int Line)
{
    /// <summary>Whether an output line shows this value.</summary>
    public bool MatchedBy(string output)
    {
        if (Decimals is not int decimals) return output.Contains(Text, StringComparison.Ordinal);
        double want = double.Parse(Text, CultureInfo.InvariantCulture);
        foreach (Match m in Regex.Matches(output, @"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"))
        {
            if (!double.TryParse(m.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double got)) continue;
            if (Math.Abs(Math.Round(got, decimals, MidpointRounding.AwayFromZero) - want) <= Math.Pow(10, -decimals) * 1e-6) return true;
        }
        return false;
    }
}
