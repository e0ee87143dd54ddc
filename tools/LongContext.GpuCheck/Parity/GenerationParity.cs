using LongContext.GpuCheck.References;
using LongContext.GpuCheck.Results;
using LongContext.Llama;
using LongContext.Llama.Evaluation;
using LongContext.Llama.Generation;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>
/// KV-cached generation on the device against uncached full forwards, for a tiny seeded Llama under every rope type
/// (default, linear, dynamic NTK, YaRN, LongRoPE, Llama 3), prompts past the rope's window, and for dynamic NTK and
/// LongRoPE decoding that crosses it (the generator then recomputes the sequence). Two rows per case and dtype:
/// <list type="bullet">
/// <item>logits: <see cref="LlamaGenerator"/> prefills the prompt in chunks and decodes greedily token by token; each
/// step's next-token logits against the last-position logits of a full uncached forward of the prompt plus the tokens
/// chosen so far. float32: abs 1e-4 (the fixture README's logits tolerance; the CPU tests hold 1e-5). bfloat16: 0.1 x
/// max |logits|, as <see cref="ModelParity"/> (cached and full forwards round in a different order; a wrong rope or
/// position moves logits by O(1)).</item>
/// <item>tokens: the cached greedy tokens against <see cref="FullForwardGreedyDecoder"/>'s, exactly. A divergence
/// passes only at a near-tie: where the full forward's two best logits are within twice the measured logits error
/// (plus one rounding unit of the logits), so either token is the argmax of logits within that error; the row says at
/// which step.</item>
/// </list>
/// The model is seeded on the CPU (float64 values rounded once to the dtype), so every device sees the same weights.
/// </summary>
internal static class GenerationParity
{
    private const double Float32Tolerance = 1e-4, BFloat16Relative = 0.1;
    private static readonly double[] Short = [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.0, 3.5];
    private static readonly double[] Long = [1.0, 1.5, 2.5, 4.0, 6.0, 8.0, 11.0, 14.0];

    /// <summary>One rope case: the rope, max_position_embeddings and the prompt length.</summary>
    private sealed record Case(string Name, RopeParameters Rope, int MaxPositions, int PromptLength);

    /// <summary>Sizes of one mode (quick: CPU smoke; full: the GPU run).</summary>
    private sealed record Sizes(int Window, int Steps, int Chunk, int Hidden, int Heads, int KvHeads, int Layers, int Intermediate, int Vocab);

    public static void Run(ParityContext c)
    {
        // head dim 16 in both modes, so LongRoPE's 8 factors fit.
        Sizes s = c.Quick
            ? new(Window: 16, Steps: 16, Chunk: 5, Hidden: 64, Heads: 4, KvHeads: 2, Layers: 2, Intermediate: 128, Vocab: 128)
            : new(Window: 128, Steps: 32, Chunk: 48, Hidden: 128, Heads: 8, KvHeads: 4, Layers: 4, Intermediate: 256, Vocab: 512);
        int w = s.Window;
        Case[] cases =
        [
            new("default, prompt past max_position_embeddings", RopeParameters.Default(), w, w + 4),
            new("linear factor 4, prompt past max_position_embeddings", RopeParameters.Linear(4), w, w + 4),
            new("dynamic NTK factor 2, decoding crosses max_position_embeddings", RopeParameters.Dynamic(2), w, w - 6),
            new($"YaRN factor 4 over {w}, prompt past the original window", RopeParameters.Yarn(4, w), 4 * w, w + 4),
            new("LongRoPE, decoding crosses the original window (short to long factors)", RopeParameters.LongRope(Short, Long, w, 4), 4 * w, w - 6),
            new($"Llama 3 factor 8 over {w}, prompt past the original window", RopeParameters.Llama3(8, 1, 4, w, 10000), 8 * w, w + 4),
        ];
        foreach (Case k in cases)
            foreach (ScalarType dtype in c.Dtypes)
                c.Runner.Run("generation", $"{k.Name} (prompt {k.PromptLength}, {s.Steps} steps, chunk {s.Chunk})", Errors.Name(dtype),
                    r => Compare(c, r, k, s, dtype));
    }

    private static void Compare(ParityContext c, Recorder r, Case k, Sizes s, ScalarType dtype)
    {
        using var model = Build(k, s, dtype, c.Device);
        int[] prompt = Prompt(k.PromptLength, s.Vocab, seed: 3000 + k.PromptLength);

        // Cached: chunked prefill, then one token per step (and a recomputation where the rope's frequencies change).
        var cachedLogits = new List<Tensor>();
        var generator = new LlamaGenerator(model, new GeneratorOptions { PrefillChunkSize = s.Chunk })
        {
            ObserveLogits = (_, l) => cachedLogits.Add(l[0].detach().cpu().to(ScalarType.Float64)),
        };
        IReadOnlyList<int> cached = generator.Generate(prompt, new DecodingOptions { MaxNewTokens = s.Steps }).TokenIds;

        // Uncached: a full forward of the prompt plus the cached path's tokens so far, at every step.
        var fullLogits = new List<Tensor>();
        for (int step = 0; step < cached.Count; step++)
            fullLogits.Add(FullForwardLast(model, prompt.Concat(cached.Take(step)).ToArray(), c.Device));
        Tensor actual = stack(cachedLogits), reference = stack(fullLogits);
        double tolerance = dtype == ScalarType.Float32 ? Float32Tolerance : BFloat16Relative * Errors.MaxAbs(reference);
        double error = r.Close("cached step logits vs full forward", actual, reference, tolerance, $"{cached.Count} steps, max |logits| {Errors.MaxAbs(reference):G4}");

        // Greedy tokens: cached generation against greedy decoding by full forwards.
        long[] full = new FullForwardGreedyDecoder(model).Generate(prompt.Select(i => (long)i).ToArray(), s.Steps);
        int diverged = Enumerable.Range(0, s.Steps).FirstOrDefault(i => i >= cached.Count || cached[i] != full[i], -1);
        if (diverged < 0)
        {
            r.True("greedy tokens vs full-forward greedy decoding", true, $"all {s.Steps} tokens equal");
            return;
        }
        // Until the divergence both paths hold the same sequence, so fullLogits[diverged] is the full forward there.
        Tensor top = fullLogits[Math.Min(diverged, fullLogits.Count - 1)].topk(2).values;
        double margin = top[0].item<double>() - top[1].item<double>();
        // Logits within e of each other can swap an argmax only where the two best are within 2e; e = the measured error
        // plus one rounding of the logits (the decoder projects the last hidden state itself).
        double bound = 2 * (Math.Min(error, tolerance) + Errors.Ulps(dtype, reference, 1));
        bool nearTie = diverged < cached.Count && margin <= bound;
        r.True("greedy tokens vs full-forward greedy decoding", nearTie,
            $"equal through step {diverged - 1}; step {diverged}: cached {(diverged < cached.Count ? cached[diverged] : "none")} vs full {full[diverged]}, "
            + $"top-2 margin {margin:G4} {(nearTie ? "<=" : ">")} {bound:G4} (2 x (logits error + 1 u x max |logits|)){(nearTie ? ", a near-tie" : "")}");
    }

    /// <summary>A tiny Llama with seeded weights (float64 on the CPU, rounded once to the dtype), in evaluation mode.</summary>
    private static LlamaForCausalLM Build(Case k, Sizes s, ScalarType dtype, Device device)
    {
        var config = new LlamaConfig
        {
            VocabSize = s.Vocab, HiddenSize = s.Hidden, IntermediateSize = s.Intermediate, NumHiddenLayers = s.Layers,
            NumAttentionHeads = s.Heads, NumKeyValueHeads = s.KvHeads, HeadDim = s.Hidden / s.Heads,
            MaxPositionEmbeddings = k.MaxPositions, Rope = k.Rope,
        };
        var model = new LlamaForCausalLM(config, dtype);
        try
        {
            var gen = Inputs.Generator(2900);
            using (no_grad())
                foreach (var (name, p) in model.named_parameters())
                {
                    // Norm gains near 1; matrices with std 1/sqrt(fan in) (logits of order 1); embeddings standard normal.
                    Tensor values = name.EndsWith("norm.weight", StringComparison.Ordinal)
                        ? Inputs.Normal(gen, p.shape, 0.1).add_(1.0)
                        : Inputs.Normal(gen, p.shape, name.Contains("embed_tokens", StringComparison.Ordinal) ? 1.0 : 1.0 / Math.Sqrt(p.shape[^1]));
                    p.copy_(values);
                }
            model.to(device);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Seeded token ids in [1, vocab).</summary>
    private static int[] Prompt(int length, int vocab, int seed)
        => randint(1, vocab, [length], dtype: ScalarType.Int64, generator: Inputs.Generator(seed)).data<long>().Select(v => (int)v).ToArray();

    /// <summary>Last-position logits (vocab) of a full uncached forward, float64 on the CPU.</summary>
    private static Tensor FullForwardLast(LlamaForCausalLM model, int[] ids, Device device)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor input = tensor(ids.Select(i => (long)i).ToArray(), device: device).unsqueeze(0);
        return model.forward(input)[0, -1].cpu().to(ScalarType.Float64).MoveToOuterDisposeScope();
    }
}
