using System.Globalization;
using LongContext.ReadmeCheck;

// Checks the README's C# examples: each ```csharp block of README.md and of the markdown files it links is compiled
// as a console program against the library; blocks that need no files (no "// Assumes:" or "// Compile-only:" line)
// also run, and values they state with "// prints <value>" must appear in their output.
// Usage: ReadmeCheck [--root <repository>] [markdown files...]   (default: README.md)
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string root = FindRoot(Directory.GetCurrentDirectory());
var files = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--root" && i + 1 < args.Length) root = Path.GetFullPath(args[++i]);
    else if (args[i].StartsWith("--", StringComparison.Ordinal))
    {
        Console.Error.WriteLine($"unknown option '{args[i]}'; usage: ReadmeCheck [--root <repository>] [markdown files...]");
        return 2;
    }
    else files.Add(args[i]);
}
if (files.Count == 0) files.Add("README.md");

List<CodeBlock> blocks;
List<Example> examples;
try
{
    blocks = files.SelectMany(f => MarkdownExamples.Collect(root, f)).ToList();
    examples = blocks.Select(Example.From).ToList();
}
catch (Exception e) when (e is InvalidDataException or FileNotFoundException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

var compiler = new ExampleCompiler();
int failures = 0, ran = 0;
string scratch = Directory.CreateTempSubdirectory("readme-examples-").FullName;
try
{
    for (int i = 0; i < examples.Count; i++)
    {
        Example example = examples[i];
        var (assembly, errors) = compiler.Compile(example, i);
        if (assembly is null)
        {
            failures++;
            bool warningsOnly = errors.All(e => e.Contains(": warning CS", StringComparison.Ordinal));
            Console.WriteLine($"FAIL {example.Block.Where}: {(warningsOnly ? "compiles with warnings (a reader's build shows them)" : "does not compile")}");
            foreach (string error in errors) Console.WriteLine($"    {error}");
            continue;
        }
        if (example.CompileOnlyReason is not null)
        {
            if (example.Expected.Count > 0)
            {
                failures++;
                Console.WriteLine($"FAIL {example.Block.Where}: states printed values but is not run ({example.CompileOnlyReason})");
                continue;
            }
            Console.WriteLine($"ok   {example.Block.Where}: compiles (not run: {example.CompileOnlyReason})");
            continue;
        }
        string folder = Path.Combine(scratch, $"example{i}");
        Directory.CreateDirectory(folder);
        string output;
        try
        {
            output = ExampleCompiler.Run(assembly, folder, TimeSpan.FromMinutes(2));
            ran++;
        }
        catch (Exception e)
        {
            failures++;
            Console.WriteLine($"FAIL {example.Block.Where}: compiles but throws when run: {e.GetType().Name}: {e.Message}");
            continue;
        }
        string? missing = CheckOutput(example, output);
        if (missing is not null)
        {
            failures++;
            Console.WriteLine($"FAIL {missing}");
            Console.WriteLine("    output was:");
            foreach (string line in output.Split('\n')) Console.WriteLine($"    | {line.TrimEnd('\r')}");
            continue;
        }
        Console.WriteLine($"ok   {example.Block.Where}: compiles and runs{(example.Expected.Count > 0 ? $", prints {string.Join(", ", example.Expected.Select(x => x.Text))}" : "")}");
    }
}
finally
{
    try { Directory.Delete(scratch, recursive: true); } catch (IOException) { }
}

Console.WriteLine($"{examples.Count} examples in {string.Join(", ", blocks.Select(b => b.File).Distinct())}: {examples.Count - failures} ok ({ran} run), {failures} failed.");
return failures == 0 ? 0 : 1;

// The stated values in order: each must appear on an output line after the previous one's line.
static string? CheckOutput(Example example, string output)
{
    string[] lines = output.Split('\n');
    int next = 0;
    foreach (Expectation x in example.Expected)
    {
        int found = Array.FindIndex(lines, next, l => x.MatchedBy(l));
        if (found < 0) return $"{example.Block.File}:{x.Line}: the example states it prints '{x.Text}'{(x.Decimals is int d ? $" (to {d} decimals)" : "")}, which its output does not show (in order)";
        next = found + 1;
    }
    return null;
}

// The repository root: the nearest folder above the start holding LongContext.sln.
static string FindRoot(string start)
{
    for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "LongContext.sln"))) return dir.FullName;
    return start;
}
