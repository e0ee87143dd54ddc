using LongContext.Attention;
using LongContext.Text.Tokenization;
using TorchSharp;

namespace LongContext.Llama.Evaluation;

/// <summary>
/// The evaluations of the long-context papers on a <see cref="LlamaForCausalLM"/> from one call: sliding-window
/// perplexity (both protocols) and passkey retrieval by length, returned as a report and written as a Markdown
/// table, CSV files and a PNG.
/// </summary>
public static class LlamaEvaluation
{
    /// <summary>
    /// Runs the configured evaluations with the model in eval mode (its evaluation attention, no dropout; the
    /// previous mode is restored afterwards) and without gradients.
    /// </summary>
    /// <param name="model">The model, on its device.</param>
    /// <param name="options">What to measure.</param>
    /// <param name="tokens">The perplexity stream (e.g. LongLoRA's PG19 <c>test.bin</c>); required when perplexity runs.</param>
    /// <param name="tokenizer">The model's tokenizer (e.g. <see cref="HfTokenizer.Load"/> of its folder); required when the passkey test runs.</param>
    /// <param name="decoder">Greedy decoder; null uses <see cref="FullForwardGreedyDecoder"/>.</param>
    /// <param name="outputFolder">When given, the report's files are written there (<see cref="EvaluationReport.Write"/>); the folder is
    /// created before the evaluations run, so a path that cannot be one (empty, an existing file) fails first.</param>
    /// <param name="progress">Progress lines, or null.</param>
    /// <exception cref="ArgumentException">Nothing to evaluate (both measures null), a setting the others leave unused (<see cref="EvaluationOptions.ChunkSize"/> without
    /// perplexity, a step or stride for a protocol not run), a missing input, a stream too short for a perplexity length, a passkey length
    /// <see cref="PasskeyRetrieval.Prompt"/> refuses, or a length the model's S2 evaluation attention cannot take; all checked
    /// before any work, except the S2 fit of a passkey prompt (checked as each prompt is built).</exception>
    /// <exception cref="IOException"><paramref name="outputFolder"/> cannot be created (e.g. a file of that name exists); before any work.</exception>
    public static EvaluationReport Run(LlamaForCausalLM model, EvaluationOptions options, TokenSequence? tokens = null,
        ITextTokenizer? tokenizer = null, IGreedyDecoder? decoder = null, string? outputFolder = null, IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.CheckSettingsUsed(nameof(options));
        if (options.Perplexity is null && options.Passkey is null)
            throw new ArgumentException("Perplexity and Passkey are both null: nothing to evaluate (an empty report); set at least one of them.", nameof(options));
        if (options.Perplexity is not null && tokens is null)
            throw new ArgumentException("perplexity is requested but no token stream was given; pass tokens or set Perplexity = null.", nameof(tokens));
        if (options.Passkey is not null && tokenizer is null)
            throw new ArgumentException("the passkey test is requested but no tokenizer was given; pass a tokenizer or set Passkey = null.", nameof(tokenizer));
        AttentionOptions? s2 = model.Model.Layers.Select(l => l.SelfAttention.Core.EvaluationOptions).FirstOrDefault(a => a.Mode == AttentionMode.ShiftedSparse);
        if (options.Perplexity is { } p && s2 is not null)
            foreach (var protocol in p.Protocols)
                foreach (int length in p.Lengths)
                    foreach (int windowLength in SlidingWindowPerplexity.Windows(protocol, tokens!.Count, length, p).Select(w => w.Length).Distinct())
                        CheckS2(windowLength, s2, "perplexity window");
        if (options.Passkey is { } passkeyOptions) PasskeyRetrieval.CheckOptions(tokenizer!, passkeyOptions);   // before the perplexity run
        if (outputFolder is not null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(outputFolder);
            LongContext.IO.AtomicFile.CreateFolder(outputFolder);      // as Write will: a path that cannot be a folder fails now, not after the run
        }

        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            IReadOnlyList<PerplexityResult> perplexity = options.Perplexity is { } po
                ? SlidingWindowPerplexity.Evaluate(new LlamaScorer(model, options.ChunkSize), tokens!, po, progress)
                : [];
            IReadOnlyList<PasskeyResult> passkey = options.Passkey is { } pk
                ? PasskeyRetrieval.RunChecked(decoder ?? new FullForwardGreedyDecoder(model), tokenizer!, pk,
                    s2 is null ? null : n => CheckS2(n, s2, "passkey prompt"), progress)
                : [];
            var report = new EvaluationReport(perplexity, passkey);
            if (outputFolder is not null) report.Write(outputFolder);
            return report;
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    private static void CheckS2(int length, AttentionOptions s2, string what)
    {
        try
        {
            S2GroupLayout.GroupSize(length, s2.GroupSizeRatio);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(
                $"the model evaluates with S2 attention (group ratio {s2.GroupSizeRatio}) and a {what} of {length} tokens does not fit its groups: {e.Message} " +
                "Evaluate with full attention (LongLoRA's choice) or use lengths whose S2 group divides them.", "options", e);
        }
    }
}
