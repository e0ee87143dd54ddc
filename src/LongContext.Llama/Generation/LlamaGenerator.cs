using System.Runtime.CompilerServices;
using LongContext.Attention;
using LongContext.Rope;
using LongContext.Text.Tokenization;
using static TorchSharp.torch;

namespace LongContext.Llama.Generation;

/// <summary>
/// Text generation from a <see cref="LlamaForCausalLM"/> with a KV cache: the prompt (a batch of prompts is left
/// padded) is prefilled in chunks, then tokens are decoded one step at a time, each step computing one position per
/// row and only the last position's logits. Tokens are streamed as they are chosen, with their text when a
/// tokenizer (<see cref="ITextTokenizer"/>) is given: each row's ids go through its own <see cref="IncrementalDecoder"/>
/// (special tokens skipped), so characters spread over several byte tokens come out whole.
/// </summary>
/// <remarks>
/// <para>Exact under every rope type: at every step the logits equal those of a full forward of the whole sequence
/// (tests: 1e-5 in float32). Default, linear, YaRN and Llama 3 ropes have fixed frequencies, so cached keys stay valid.
/// Dynamic NTK recomputes its base from the sequence length once the length passes
/// <c>max_position_embeddings</c>, and LongRoPE switches from short to long factors past its original window; then a
/// full forward rotates every position with the new frequencies, and since every layer's keys and values depend on
/// the layers below (which attend with the rope), re-rotating cached keys alone cannot reproduce it. When the
/// frequencies for the next length differ from those of the cache, the generator recomputes the whole sequence (a
/// chunked prefill) into the emptied cache. Cost: nothing below the window; LongRoPE, one recomputation when it
/// crosses the original window; dynamic NTK past <c>max_position_embeddings</c>, one recomputation per step (decoding
/// then costs a chunked prefill per token, what HF's cache avoids by keeping keys of an older base, transformers
/// #25104). With a batch, the rope length is the longest row's, as in a padded full forward.</para>
/// <para>The model must be in evaluation mode with full attention in its evaluation options (S2 is never used at
/// inference). Not thread-safe.</para>
/// </remarks>
public sealed class LlamaGenerator
{
    private readonly LlamaForCausalLM _model;

    /// <summary>Creates a generator over a model.</summary>
    /// <param name="model">The model, in evaluation mode.</param>
    /// <param name="options">Prefill chunk size and cache settings; null for the defaults.</param>
    public LlamaGenerator(LlamaForCausalLM model, GeneratorOptions? options = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        Options = options ?? new GeneratorOptions();
    }

    /// <summary>Prefill chunking and cache settings.</summary>
    public GeneratorOptions Options { get; }

    /// <summary>Sees the next-token logits (B, vocab) of every step before a token is chosen (tests compare them).</summary>
    internal Action<int, Tensor>? ObserveLogits { get; set; }

    /// <summary>Generates from one prompt.</summary>
    /// <param name="prompt">Token ids, at least one, each in [0, vocab).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="tokenizer">Turns the generated ids into text (needed for stop strings); null for ids only.</param>
    public GenerationResult Generate(IReadOnlyList<int> prompt, DecodingOptions options, ITextTokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return GenerateBatch([prompt], options, tokenizer)[0];
    }

    /// <summary>Generates from several prompts at once (left padded into one batch).</summary>
    /// <param name="prompts">One or more prompts, each at least one token.</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="tokenizer">Turns each row's ids into text (needed for stop strings); null for ids only.</param>
    /// <returns>One result per prompt, in order.</returns>
    public IReadOnlyList<GenerationResult> GenerateBatch(IReadOnlyList<IReadOnlyList<int>> prompts, DecodingOptions options, ITextTokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var ids = prompts.Select(_ => new List<int>()).ToArray();
        var texts = prompts.Select(_ => new System.Text.StringBuilder()).ToArray();
        var finish = new FinishReason[prompts.Count];
        foreach (GeneratedToken t in StreamBatch(prompts, options, tokenizer))
        {
            ids[t.Row].Add(t.TokenId);
            texts[t.Row].Append(t.Text);
            if (t.Finish is { } f) finish[t.Row] = f;
        }
        return ids.Select((list, row) => new GenerationResult(list, texts[row].ToString(), finish[row])).ToList();
    }

    /// <summary>Streams the tokens of one prompt as they are chosen.</summary>
    /// <param name="prompt">Token ids, at least one, each in [0, vocab).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="tokenizer">Turns the generated ids into text (needed for stop strings); null for ids only.</param>
    public IEnumerable<GeneratedToken> Stream(IReadOnlyList<int> prompt, DecodingOptions options, ITextTokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return StreamBatch([prompt], options, tokenizer);
    }

    /// <summary>
    /// Streams the tokens of one prompt asynchronously: each step runs on the thread pool, so a UI or server thread
    /// is not blocked; cancellation is checked between steps.
    /// </summary>
    /// <param name="prompt">Token ids, at least one, each in [0, vocab).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="tokenizer">Turns the generated ids into text; null for ids only.</param>
    /// <param name="cancellationToken">Stops the generation between steps.</param>
    public async IAsyncEnumerable<GeneratedToken> StreamAsync(IReadOnlyList<int> prompt, DecodingOptions options, ITextTokenizer? tokenizer = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using IEnumerator<GeneratedToken> steps = Stream(prompt, options, tokenizer).GetEnumerator();
        while (await Task.Run(steps.MoveNext, cancellationToken).ConfigureAwait(false))
        {
            yield return steps.Current;
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// Streams the tokens of several prompts (left padded into one batch), in step order: at each step one token of
    /// every row still running. A row stops at a stop token, a stop string or <see cref="DecodingOptions.MaxNewTokens"/>.
    /// </summary>
    /// <param name="prompts">One or more prompts, each at least one token.</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="tokenizer">Turns each row's ids into text (needed for stop strings); null for ids only.</param>
    /// <exception cref="ArgumentException">An empty prompt, an id outside the vocabulary, a stop id outside it, stop
    /// strings without a tokenizer, sampling settings with greedy decoding, or a prompt that does not fit the cache
    /// (each named with its value).</exception>
    public IEnumerable<GeneratedToken> StreamBatch(IReadOnlyList<IReadOnlyList<int>> prompts, DecodingOptions options, ITextTokenizer? tokenizer = null)
    {
        Check(prompts, options, tokenizer);
        return Run(prompts, options, tokenizer);
    }

    private void Check(IReadOnlyList<IReadOnlyList<int>> prompts, DecodingOptions options, ITextTokenizer? tokenizer)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        int vocab = _model.Config.VocabSize;
        if (prompts.Count == 0) throw new ArgumentException("at least one prompt is needed; got none.", nameof(prompts));
        for (int row = 0; row < prompts.Count; row++)
        {
            IReadOnlyList<int> prompt = prompts[row] ?? throw new ArgumentException($"prompt {row} is null.", nameof(prompts));
            if (prompt.Count == 0) throw new ArgumentException($"prompt {row} is empty; generation needs at least one token to start from.", nameof(prompts));
            foreach (int id in prompt)
                if (id < 0 || id >= vocab)
                    throw new ArgumentOutOfRangeException(nameof(prompts), id, $"prompt {row} holds token id {id}, outside the vocabulary [0, {vocab}).");
        }
        foreach (int id in options.StopTokenIds)
            if (id >= vocab)
                throw new ArgumentOutOfRangeException(nameof(options), id, $"{nameof(DecodingOptions.StopTokenIds)} holds {id}, outside the vocabulary [0, {vocab}).");
        if (options.StopStrings.Count > 0 && tokenizer is null)
            throw new ArgumentException($"{nameof(DecodingOptions.StopStrings)} [{string.Join(", ", options.StopStrings.Select(s => $"\"{s}\""))}] need a tokenizer to see the text; pass one.", nameof(tokenizer));
        if (options.Greedy)
        {
            var ignored = new List<string>();
            if (options.Temperature != 1.0) ignored.Add($"{nameof(DecodingOptions.Temperature)} {options.Temperature}");
            if (options.TopK is int k) ignored.Add($"{nameof(DecodingOptions.TopK)} {k}");
            if (options.TopP != 1.0) ignored.Add($"{nameof(DecodingOptions.TopP)} {options.TopP}");
            if (options.Seed is int seed) ignored.Add($"{nameof(DecodingOptions.Seed)} {seed}");
            if (ignored.Count > 0)
                throw new ArgumentException($"{string.Join(", ", ignored)} {(ignored.Count == 1 ? "is a sampling setting" : "are sampling settings")}, which greedy decoding does not use; set Greedy = false to sample.", nameof(options));
        }
        int longest = prompts.Max(p => p.Count);
        long needed = (long)longest + options.MaxNewTokens;      // in long: MaxNewTokens may be near int.MaxValue
        if (Options.CacheCapacity is int capacity)
        {
            if (longest > capacity)
                throw new ArgumentException($"a prompt of {longest} tokens is longer than the cache's capacity of {capacity} positions.", nameof(prompts));
            if (needed > capacity)
                throw new ArgumentException(
                    $"a prompt of {longest} tokens plus {options.MaxNewTokens} new tokens needs {needed} positions; the cache holds {capacity}.", nameof(prompts));
        }
        else if (needed > int.MaxValue)
            throw new ArgumentException(
                $"a prompt of {longest} tokens plus {nameof(DecodingOptions.MaxNewTokens)} {options.MaxNewTokens} needs {needed} cache positions, " +
                $"more than a KV cache holds ({int.MaxValue}); the cache is allocated for the prompt plus {nameof(DecodingOptions.MaxNewTokens)}, so lower it.", nameof(options));
        if (_model.training)
            throw new InvalidOperationException("generation runs in evaluation mode (full attention, no dropout); call model.eval() first.");
        var s2 = _model.Model.Layers.Select((l, i) => (l.SelfAttention.Core.EvaluationOptions.Mode, i)).FirstOrDefault(x => x.Mode == AttentionMode.ShiftedSparse);
        if (s2.Mode == AttentionMode.ShiftedSparse)
            throw new InvalidOperationException($"layer {s2.i}'s attention core uses ShiftedSparse in evaluation mode; generation needs full attention.");
    }

    private IEnumerable<GeneratedToken> Run(IReadOnlyList<IReadOnlyList<int>> prompts, DecodingOptions options, ITextTokenizer? tokenizer)
    {
        int batch = prompts.Count, longest = prompts.Max(p => p.Count);
        Device device = _model.Model.EmbeddingWeight.device;
        ScalarType dtype = Options.CacheDtype ?? _model.Model.ComputeDtype;
        int capacity = Options.CacheCapacity ?? longest + options.MaxNewTokens;
        var rows = prompts.Select(p => new RowState(p, options.StopStrings, tokenizer is null ? null : new IncrementalDecoder(tokenizer), tokenizer?.VocabSize ?? 0)).ToArray();
        var generator = options.Greedy ? null : new Generator((ulong)(options.Seed ?? Random.Shared.Next()));

        using var cache = new KvCache(_model.Config, batch, capacity, dtype, device);
        // Left padding: row r's tokens are preceded by (longest - length) pads, masked out everywhere.
        var padded = new long[batch, longest];
        var mask = new long[batch, longest];
        for (int r = 0; r < batch; r++)
        {
            int pad = longest - prompts[r].Count;
            for (int j = 0; j < prompts[r].Count; j++)
            {
                padded[r, pad + j] = prompts[r][j];
                mask[r, pad + j] = 1;
            }
        }
        Tensor tokens, attention;
        using (var setup = NewDisposeScope())
        {
            tokens = tensor(padded).to(device).DetachFromDisposeScope();          // (B, L) every token so far
            attention = tensor(mask).to(device).DetachFromDisposeScope();         // (B, L)
        }
        try
        {
            Tensor logits = Prefill(cache, tokens, attention);
            for (int step = 0; step < options.MaxNewTokens; step++)
            {
                int[] next;
                ObserveLogits?.Invoke(step, logits);
                using (logits) next = LogitsProcessing.Choose(logits, options, rows.Select(r => (IReadOnlyCollection<int>)r.Seen).ToArray(), generator);
                bool last = step == options.MaxNewTokens - 1;
                for (int r = 0; r < batch; r++)
                {
                    if (rows[r].Finished) continue;
                    yield return rows[r].Accept(r, step, next[r], options.StopTokenIds, last);
                }
                if (last || rows.All(r => r.Finished)) yield break;

                using (var scope = NewDisposeScope())
                {
                    Tensor nextIds = tensor(next.Select(v => (long)v).ToArray(), device: device).unsqueeze(1);
                    Tensor grown = cat([tokens, nextIds], 1);
                    Tensor grownMask = cat([attention, ones(batch, 1, dtype: ScalarType.Int64, device: device)], 1);
                    tokens.Dispose();
                    attention.Dispose();
                    tokens = grown.DetachFromDisposeScope();
                    attention = grownMask.DetachFromDisposeScope();
                }
                logits = FrequenciesChangeAt(cache, attention)
                    ? Recompute(cache, tokens, attention)
                    : Decode(cache, tokens, attention);
            }
        }
        finally
        {
            tokens.Dispose();
            attention.Dispose();
            generator?.Dispose();
        }
    }

    /// <summary>Chunked prefill of the whole (padded) sequence into the cache; next-token logits (B, vocab).</summary>
    private Tensor Prefill(KvCache cache, Tensor tokens, Tensor attention)
    {
        using var scope = NewDisposeScope();
        Tensor positions = AttentionMasks.PositionIds(attention);
        using (no_grad())
            return _model.NextTokenLogits(tokens, cache, attention, positions, Options.PrefillChunkSize).MoveToOuterDisposeScope();
    }

    /// <summary>The cache emptied and the sequence so far prefilled again (the rope's frequencies changed).</summary>
    private Tensor Recompute(KvCache cache, Tensor tokens, Tensor attention)
    {
        cache.Reset();
        return Prefill(cache, tokens, attention);
    }

    /// <summary>One decode step: the last token of every row at its position.</summary>
    private Tensor Decode(KvCache cache, Tensor tokens, Tensor attention)
    {
        using var scope = NewDisposeScope();
        long length = tokens.size(1);
        Tensor position = attention.sum(1, keepdim: true).sub(1);                 // real tokens before the new one
        using (no_grad())
            return _model.NextTokenLogits(tokens.narrow(1, length - 1, 1), cache, attention, position).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether the rope's frequencies for the next step's length differ from the cache's (dynamic NTK past its window,
    /// LongRoPE crossing its original window). Asks the model's rotary embedding for the step's largest position.
    /// </summary>
    private bool FrequenciesChangeAt(KvCache cache, Tensor attention)
    {
        RotaryEmbedding rotary = _model.Model.RotaryEmbedding;
        if (rotary.Options.Parameters.Type is not (RopeType.Dynamic or RopeType.LongRope)) return false;
        using var scope = NewDisposeScope();
        long maxPosition = attention.sum(1).max().item<long>() - 1;
        _ = rotary.forward(tensor(new[] { maxPosition }, device: attention.device).unsqueeze(0));
        return !cache.MatchesRope(rotary);
    }

    /// <summary>Per-row bookkeeping: ids seen (for the repetition penalty), text and stop strings, finish.</summary>
    /// <remarks>Ids at or past the tokenizer's vocabulary (a model vocabulary padded past the tokenizer's, e.g. Qwen2's
    /// 151,936 rows for 151,665 tokens) add no text, as HF's decode skips ids it has no token for.</remarks>
    private sealed class RowState(IReadOnlyList<int> prompt, IReadOnlyList<string> stopStrings, IncrementalDecoder? text, int textVocab)
    {
        private readonly StopStringFilter _stops = new(stopStrings);

        public List<int> Seen { get; } = [.. prompt];

        public bool Finished { get; private set; }

        public GeneratedToken Accept(int row, int index, int id, IReadOnlyList<int> stopIds, bool last)
        {
            Seen.Add(id);
            FinishReason? finish = null;
            string piece = "";
            if (stopIds.Contains(id))
            {
                finish = FinishReason.StopToken;
            }
            else if (text is not null)
            {
                piece = _stops.Push(id < textVocab ? text.Append(id) : "");
                if (_stops.Stopped) finish = FinishReason.StopString;
            }
            if (finish is null && last) finish = FinishReason.MaxNewTokens;
            if (finish is not null)
            {
                Finished = true;
                if (text is not null)
                {
                    string rest = text.Flush();
                    if (finish != FinishReason.StopString) piece += _stops.Push(rest) + _stops.Flush();
                }
            }
            return new GeneratedToken(row, index, id, piece, finish);
        }
    }
}
