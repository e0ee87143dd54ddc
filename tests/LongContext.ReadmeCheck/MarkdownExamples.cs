using System.Text.RegularExpressions;

namespace LongContext.ReadmeCheck;

/// <summary>One fenced C# block of a markdown file.</summary>
/// <param name="File">The markdown file, relative to the repository root.</param>
/// <param name="FenceLine">1-based line of the opening fence.</param>
/// <param name="Lines">The block's lines (without the fences); line i is at <c>FenceLine + 1 + i</c>.</param>
internal sealed record CodeBlock(string File, int FenceLine, IReadOnlyList<string> Lines)
{
    /// <summary>1-based markdown line of the block's line <paramref name="index"/>.</summary>
    public int LineOf(int index) => FenceLine + 1 + index;

    /// <summary>Where the block is, as an editor link: <c>README.md:123</c>.</summary>
    public string Where => $"{File}:{FenceLine}";
}

/// <summary>Finds the C# examples of a markdown file and of the repository's markdown files it links.</summary>
internal static partial class MarkdownExamples
{
    [GeneratedRegex(@"^\s*(```+|~~~+)\s*(\S*)")]
    private static partial Regex Fence();

    [GeneratedRegex(@"\]\(([^)#\s]+\.md)(#[^)]*)?\)")]
    private static partial Regex MarkdownLink();

    /// <summary>Every <c>```csharp</c> (or <c>```cs</c>) block of <paramref name="start"/> and of the local markdown
    /// files reachable from it through links, each file once, in reading order.</summary>
    /// <param name="root">Repository root.</param>
    /// <param name="start">A markdown file relative to <paramref name="root"/>.</param>
    public static List<CodeBlock> Collect(string root, string start)
    {
        var blocks = new List<CodeBlock>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>();
        queue.Enqueue(Normalize(start));
        while (queue.Count > 0)
        {
            string file = queue.Dequeue();
            if (!seen.Add(file)) continue;
            string path = Path.Combine(root, file);
            if (!File.Exists(path)) throw new FileNotFoundException($"markdown file '{file}' (linked from the README) does not exist.", path);
            string[] lines = File.ReadAllLines(path);
            blocks.AddRange(Blocks(file, lines));
            foreach (string line in lines)
                foreach (Match m in MarkdownLink().Matches(line))
                {
                    string target = m.Groups[1].Value;
                    if (target.Contains("://", StringComparison.Ordinal)) continue;
                    string relative = Normalize(Path.Combine(Path.GetDirectoryName(file) ?? "", target));
                    if (!relative.StartsWith("..", StringComparison.Ordinal)) queue.Enqueue(relative);
                }
        }
        return blocks;
    }

    private static IEnumerable<CodeBlock> Blocks(string file, string[] lines)
    {
        for (int i = 0; i < lines.Length; i++)
        {
            Match open = Fence().Match(lines[i]);
            if (!open.Success) continue;
            string fence = open.Groups[1].Value;
            string language = open.Groups[2].Value.ToLowerInvariant();
            int start = i;
            var body = new List<string>();
            for (i++; i < lines.Length && !lines[i].TrimStart().StartsWith(fence, StringComparison.Ordinal); i++) body.Add(lines[i]);
            if (i >= lines.Length) throw new InvalidDataException($"{file}:{start + 1}: the code fence opened here is never closed.");
            if (language is "csharp" or "cs" or "c#") yield return new CodeBlock(file, start + 1, body);
        }
    }

    /// <summary>A relative path with <c>.</c> and <c>..</c> segments resolved, '/'-separated.</summary>
    private static string Normalize(string path)
    {
        var parts = new List<string>();
        foreach (string part in path.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == ".." && parts.Count > 0 && parts[^1] != "..") parts.RemoveAt(parts.Count - 1);
            else parts.Add(part);
        }
        return string.Join('/', parts);
    }
}
