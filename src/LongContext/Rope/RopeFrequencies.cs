using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>The output of a frequency builder.</summary>
/// <param name="InverseFrequencies">float32 (rotaryDim/2) on the CPU: angle of pair i at position p is <c>p * InverseFrequencies[i]</c>.</param>
/// <param name="AttentionScaling">Factor that cos and sin carry (YaRN / LongRoPE attention factor; 1 otherwise).</param>
public sealed record RopeFrequencies(Tensor InverseFrequencies, double AttentionScaling);
