// Consumes the packed LongContext and LongContext.Llama packages: Position Interpolation RoPE through the public API,
// checked against its closed form (linear factor f at position p equals the default rotation at p / f), and a tiny
// Llama model prepared by the LongLoRA recipe: one training step (S2-Attn, LoRA, checkpointing) and an evaluation
// forward (full attention) that must be finite and shaped (B, N, vocab).
using LongContext.Llama;
using LongContext.Rope;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

using var x = randn(1, 2, 4, 8, generator: new Generator(1));
using var pi = new RotaryEmbedding(new RotaryEmbeddingOptions(HeadDim: 8, MaxPositionEmbeddings: 64, RopeParameters.Linear(4)));
using var plain = new RotaryEmbedding(new RotaryEmbeddingOptions(HeadDim: 8, MaxPositionEmbeddings: 64, RopeParameters.Default()));
using var positions = tensor(new long[] { 0, 4, 8, 12 }).unsqueeze(0);
using var scaled = tensor(new long[] { 0, 1, 2, 3 }).unsqueeze(0);
using var a = pi.Apply(x, positions);
using var b = plain.Apply(x, scaled);
double err = (a - b).abs().max().item<float>();
if (!(err < 1e-5)) { Console.Error.WriteLine($"consumer: PI rotation differs from the closed form by {err}"); return 1; }
Console.WriteLine($"consumer: LongContext package loaded; PI RoPE matches its closed form (max error {err:E1})");

random.manual_seed(7);
using var model = new LlamaForCausalLM(new LlamaConfig
{
    VocabSize = 16, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4,
    NumKeyValueHeads = 2, HeadDim = 8, MaxPositionEmbeddings = 16,
});
var report = LongLora.Prepare(model, new LongLoraOptions { TargetContextLength = 32 });
using var ids = randint(0, 16, [2, 32], dtype: ScalarType.Int64, generator: new Generator(2));
using (var optimizer = optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-3))
{
    using var loss = model.Loss(ids, ids);
    loss.backward();
    optimizer.step();
}
model.eval();
using var logits = WithoutGrad(() => model.forward(ids));
bool finite = logits.isfinite().all().item<bool>();
if (!finite || !logits.shape.SequenceEqual(new long[] { 2, 32, 16 }))
{
    Console.Error.WriteLine($"consumer: recipe forward gave shape ({string.Join(", ", logits.shape)}), finite {finite}");
    return 1;
}
Console.WriteLine($"consumer: LongContext.Llama package loaded; LongLoRA recipe (PI factor {model.Config.Rope.Factor}, {report.WrappedModules.Count} LoRA layers) trains and evaluates");
return 0;

static Tensor WithoutGrad(Func<Tensor> f)
{
    using var _ = no_grad();
    return f();
}
