using LongContext.Llama.Evaluation;
using LongContext.Text.Tokenization;

namespace LongContext.Demo.Experiment;

/// <summary>The demo's data: the shipped tokenizer (loaded through LongContext.Text) and the KJV split and tokenized.</summary>
public sealed class DemoInputs : IDisposable
{
    private DemoInputs(HfTokenizer tokenizer, List<int[]> training, List<int[]> heldOut)
    {
        Tokenizer = tokenizer;
        Training = training;
        HeldOut = heldOut;
    }

    /// <summary>The folder of the shipped data (tokenizer, kjv.txt, base model), next to the program.</summary>
    public static string DataFolder => Path.Combine(AppContext.BaseDirectory, "data");

    /// <summary>The tokenizer (SentencePiece BPE, vocabulary 2000).</summary>
    public HfTokenizer Tokenizer { get; }

    /// <summary>Training chapters' ids (Genesis..John).</summary>
    public IReadOnlyList<int[]> Training { get; }

    /// <summary>Held-out chapters' ids (Acts..Revelation).</summary>
    public IReadOnlyList<int[]> HeldOut { get; }

    /// <summary>Loads and tokenizes the shipped data, under a progress bar.</summary>
    /// <param name="dataFolder">Folder with <c>tokenizer/</c> and <c>kjv.txt</c>.</param>
    public static DemoInputs Load(string dataFolder)
    {
        var tokenizer = HfTokenizer.Load(Path.Combine(dataFolder, "tokenizer"));
        var corpus = KjvCorpus.Load(Path.Combine(dataFolder, "kjv.txt"));
        var chapters = corpus.Training.Concat(corpus.HeldOut).ToList();
        var ids = Phases.Run("tokenize KJV", chapters.Count, report =>
        {
            var list = new List<int[]>(chapters.Count);
            foreach (string c in chapters)
            {
                list.Add(tokenizer.Encode(c, addSpecialTokens: false));
                report(list.Count, "chapters");
            }
            return list;
        });
        return new DemoInputs(tokenizer, ids.Take(corpus.Training.Count).ToList(), ids.Skip(corpus.Training.Count).ToList());
    }

    /// <summary>
    /// How many held-out tokens the shipped data gives (the most <see cref="EvaluationTokens"/> can take): the held-out
    /// chapters alone are tokenized, without a progress bar (a fraction of a second).
    /// </summary>
    /// <param name="dataFolder">Folder with <c>tokenizer/</c> and <c>kjv.txt</c>.</param>
    public static long HeldOutTokens(string dataFolder)
    {
        using var tokenizer = HfTokenizer.Load(Path.Combine(dataFolder, "tokenizer"));
        var heldOut = KjvCorpus.Tokenize(KjvCorpus.Load(Path.Combine(dataFolder, "kjv.txt")).HeldOut, tokenizer);
        return TrainingRows.EvaluationStreamLength(heldOut, tokenizer);
    }

    /// <summary>The first <paramref name="tokens"/> held-out tokens as a perplexity stream.</summary>
    /// <param name="tokens">Stream length.</param>
    public TokenSequence EvaluationTokens(int tokens) => TokenSequence.FromArray(TrainingRows.EvaluationStream(HeldOut, Tokenizer, tokens));

    /// <inheritdoc />
    public void Dispose() => Tokenizer.Dispose();
}
