// Consumes the packed LongContext package: Position Interpolation RoPE through the public API, checked against
// its closed form (linear factor f at position p equals the default rotation at p / f).
using LongContext.Rope;
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
return 0;
