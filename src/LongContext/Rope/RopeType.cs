namespace LongContext.Rope;

/// <summary>
/// The rotary position embedding variants of HF transformers (<c>rope_parameters["rope_type"]</c>).
/// </summary>
public enum RopeType
{
    /// <summary><c>default</c>: the original RoPE, <c>inv_freq[i] = theta^(-2i/d)</c>.</summary>
    Default,
    /// <summary><c>linear</c>: Position Interpolation; frequencies divided by <see cref="RopeParameters.Factor"/> (same as positions / factor).</summary>
    Linear,
    /// <summary><c>dynamic</c>: NTK-aware scaling whose base grows with the longest sequence seen past <c>max_position_embeddings</c>.</summary>
    Dynamic,
    /// <summary><c>yarn</c>: YaRN, a per-frequency blend of interpolation and extrapolation plus an attention factor.</summary>
    Yarn,
    /// <summary><c>longrope</c>: LongRoPE (Phi-3): per-frequency short/long rescale factors chosen by sequence length.</summary>
    LongRope,
    /// <summary><c>llama3</c>: Llama 3.1 frequency smoothing between low- and high-frequency bands.</summary>
    Llama3,
}
