using LongContext.Benchmarks.Infrastructure;

namespace LongContext.Benchmarks.Suites;

/// <summary>Shapes shared by the LoRA and QLoRA linear suites: x (T, F), W (F, F), rank 16, alpha 32.</summary>
public static class LinearShapes
{
    /// <summary>Tokens: 8192 on CUDA (the anchor), 512 on CPU, 16 in smoke mode.</summary>
    public static int Tokens => BenchSettings.Pick(16, 512, 8192);

    /// <summary>Features in and out: 4096 on CUDA (the anchor), 2048 on CPU, 128 in smoke mode.</summary>
    public static int Features => BenchSettings.Pick(128, 2048, 4096);

    /// <summary>LoRA rank.</summary>
    public const int Rank = 16;

    /// <summary>LoRA alpha.</summary>
    public const int Alpha = 32;

    /// <summary>FLOPs of one invocation: the base GEMM 2*T*F*F forward (plus the input gradient, as much again, backward);
    /// the adapter 2*T*r*(F+F) forward and three times that forward+backward.</summary>
    public static double Flops(Pass pass, bool adapter)
    {
        double t = Tokens, f = Features, baseFwd = 2 * t * f * f, loraFwd = adapter ? 2 * t * Rank * (f + f) : 0;
        return pass == Pass.Forward ? baseFwd + loraFwd : 2 * baseFwd + 3 * loraFwd;
    }
}
