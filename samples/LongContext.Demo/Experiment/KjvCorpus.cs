using System.Text.RegularExpressions;
using LongContext.Text.Tokenization;

namespace LongContext.Demo.Experiment;

/// <summary>
/// The King James Version shipped in <c>data/kjv.txt</c> (one verse a line, <c>&lt;book&gt;&lt;chapter&gt;:&lt;verse&gt; text</c>),
/// split by book: Genesis..John train, Acts..Revelation are held out for evaluation. A document is one chapter,
/// its verses joined by spaces.
/// </summary>
public sealed partial class KjvCorpus
{
    /// <summary>The first held-out book (the package's abbreviation).</summary>
    public const string FirstHeldOutBook = "Acts";

    private KjvCorpus(IReadOnlyList<string> training, IReadOnlyList<string> heldOut)
    {
        Training = training;
        HeldOut = heldOut;
    }

    /// <summary>Training chapters (Genesis..John), in order.</summary>
    public IReadOnlyList<string> Training { get; }

    /// <summary>Held-out chapters (Acts..Revelation), in order.</summary>
    public IReadOnlyList<string> HeldOut { get; }

    [GeneratedRegex(@"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")]
    private static partial Regex VerseLine();

    /// <summary>Reads and splits the text file.</summary>
    /// <param name="path">The KJV file.</param>
    /// <exception cref="InvalidDataException">A line that is not a verse, or no held-out book.</exception>
    public static KjvCorpus Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"the KJV text '{path}' does not exist (data/prepare-kjv.sh makes it from Debian's bible-kjv).", path);
        var training = new List<string>();
        var heldOut = new List<string>();
        bool held = false;
        string? chapterKey = null;
        var verses = new List<string>();
        void Flush()
        {
            if (verses.Count > 0) (held ? heldOut : training).Add(string.Join(" ", verses));
            verses.Clear();
        }
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            Match m = VerseLine().Match(line);
            if (!m.Success) throw new InvalidDataException($"'{path}' line {lineNumber} is not '<book><chapter>:<verse> text': '{line[..Math.Min(60, line.Length)]}'.");
            string key = m.Groups[1].Value + m.Groups[2].Value;
            if (key != chapterKey)
            {
                Flush();
                chapterKey = key;
                if (m.Groups[1].Value == FirstHeldOutBook) held = true;
            }
            verses.Add(m.Groups[4].Value.Trim());
        }
        Flush();
        if (heldOut.Count == 0) throw new InvalidDataException($"'{path}' has no book '{FirstHeldOutBook}' to start the held-out part.");
        return new KjvCorpus(training, heldOut);
    }

    /// <summary>Each chapter's ids, without special tokens.</summary>
    /// <param name="chapters">Chapters.</param>
    /// <param name="tokenizer">The tokenizer.</param>
    public static List<int[]> Tokenize(IReadOnlyList<string> chapters, ITextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(chapters);
        ArgumentNullException.ThrowIfNull(tokenizer);
        return chapters.Select(c => tokenizer.Encode(c, addSpecialTokens: false)).ToList();
    }
}
