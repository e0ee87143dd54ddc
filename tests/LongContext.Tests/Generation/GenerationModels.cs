using LongContext.Llama;
using LongContext.Llama.Generation;
using LongContext.Rope;
using LongContext.Tests.Support;
using static TorchSharp.torch;

namespace LongContext.Tests.Generation;

/// <summary>Models and references the generation tests share.</summary>
internal static class GenerationModels
{
    /// <summary>The fixture's HF checkpoint (2 layers, GQA 4:2, head dim 16, vocab 128), in evaluation mode.</summary>
    public static LlamaForCausalLM Fixture(RopeParameters? rope = null, int? maxPositions = null)
    {
        string folder = Path.Combine(Fixtures.Folder("models"), "tiny_llama");
        var model = LlamaCheckpoint.Load(folder, ScalarType.Float32);
        if (rope is not null || maxPositions is not null)
            model.UpdateRope(model.Config with { Rope = rope ?? model.Config.Rope, MaxPositionEmbeddings = maxPositions ?? model.Config.MaxPositionEmbeddings });
        model.eval();
        return model;
    }

    /// <summary>Seeded token ids in [1, vocab).</summary>
    public static int[] Prompt(int length, int vocab = 128, int seed = 1)
        => randint(1, vocab, [length], dtype: ScalarType.Int64, generator: new Generator((ulong)seed)).data<long>().Select(v => (int)v).ToArray();

    /// <summary>Logits at the last position of a full (uncached) forward of <paramref name="ids"/>, (vocab).</summary>
    public static Tensor FullForwardLast(LlamaForCausalLM model, IReadOnlyList<int> ids)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor input = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
        return model.forward(input)[0, -1].MoveToOuterDisposeScope();
    }

    /// <summary>Generates and records the logits of every step (cloned, (B, vocab)).</summary>
    public static (IReadOnlyList<GenerationResult> Results, List<Tensor> Logits) GenerateWithLogits(
        LlamaForCausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, DecodingOptions options, GeneratorOptions? generatorOptions = null)
    {
        var logits = new List<Tensor>();
        var generator = new LlamaGenerator(model, generatorOptions) { ObserveLogits = (_, l) => logits.Add(l.detach().clone().DetachFromDisposeScope()) };
        return (generator.GenerateBatch(prompts, options), logits);
    }

    /// <summary>
    /// A "scripted" model: attention and MLP outputs are zero (o_proj and down_proj zeroed), so the last hidden state
    /// is the normed embedding of the current token, and lm_head's row for each successor holds its predecessor's
    /// normed embedding: greedy decoding follows <paramref name="chain"/> token by token (ids must be distinct).
    /// </summary>
    public static LlamaForCausalLM Scripted(int vocab, IReadOnlyList<int> chain)
    {
        if (chain.Distinct().Count() != chain.Count) throw new ArgumentException("the chain must not repeat a token.", nameof(chain));
        random.manual_seed(17);
        var model = new LlamaForCausalLM(new LlamaConfig
        {
            VocabSize = vocab, HiddenSize = 64, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2,
            NumKeyValueHeads = 2, HeadDim = 32, MaxPositionEmbeddings = 256,
        });
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        using (no_grad())
        {
            p["model.layers.0.self_attn.o_proj.weight"].zero_();
            p["model.layers.0.mlp.down_proj.weight"].zero_();
            Tensor e = p["model.embed_tokens.weight"].normal_();
            Tensor head = p["lm_head.weight"].zero_();
            Tensor unit = e / e.pow(2).sum(1, keepdim: true).sqrt();
            for (int i = 0; i + 1 < chain.Count; i++) head[chain[i + 1]].copy_(unit[chain[i]] * 4.0);
        }
        model.eval();
        return model;
    }
}
