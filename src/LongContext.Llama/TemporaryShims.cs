// TEMPORARY: stand-ins for the rope pieces being built on other branches, with their agreed API.
// Deleted as soon as the real LongContext.Rope / LongContext.IO.HfRopeConfig land on main.
#pragma warning disable CS1591
using System.Text.Json.Nodes;
using LongContext.Rope;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Rope
{
    public enum RopeType { Default, Linear, Dynamic, Yarn, LongRope, Llama3 }
    public enum RotaryLayout { HalfSplit, Interleaved }
    public sealed record RopeParameters
    {
        public RopeType Type { get; init; }
        public double Theta { get; init; } = 10000;
        public double Factor { get; init; } = 1;
        public int? OriginalMaxPositionEmbeddings { get; init; }
    }
    public sealed record RotaryEmbeddingOptions(int HeadDim, int MaxPositionEmbeddings, RopeParameters Parameters, RotaryLayout Layout = RotaryLayout.HalfSplit);
    public sealed class RotaryEmbedding : nn.Module<Tensor, (Tensor Cos, Tensor Sin)>
    {
        private readonly Tensor inv_freq;
        public RotaryEmbedding(RotaryEmbeddingOptions options) : base(nameof(RotaryEmbedding))
        {
            int d = options.HeadDim;
            double f = options.Parameters.Type == RopeType.Linear ? options.Parameters.Factor : 1.0;
            inv_freq = (1.0 / torch.pow(options.Parameters.Theta, torch.arange(0, d, 2, dtype: float32) / d)) / f;
            register_buffer("inv_freq", inv_freq, persistent: false);
        }
        public override (Tensor Cos, Tensor Sin) forward(Tensor positionIds)
        {
            using var scope = NewDisposeScope();
            var ang = positionIds.to(float32).unsqueeze(-1) * inv_freq.to(positionIds.device);
            var emb = torch.cat([ang, ang], -1);
            return (emb.cos().MoveToOuterDisposeScope(), emb.sin().MoveToOuterDisposeScope());
        }
        public (Tensor Q, Tensor K) Apply(Tensor q, Tensor k, Tensor positionIds)
        {
            using var scope = NewDisposeScope();
            var (cos, sin) = forward(positionIds);
            if (cos.dim() == 2) { cos = cos.unsqueeze(0); sin = sin.unsqueeze(0); }
            cos = cos.unsqueeze(1).to(q.dtype); sin = sin.unsqueeze(1).to(q.dtype);
            static Tensor Rot(Tensor x) { var h = x.shape[^1] / 2; return torch.cat([-x.narrow(-1, h, h), x.narrow(-1, 0, h)], -1); }
            return ((q * cos + Rot(q) * sin).MoveToOuterDisposeScope(), (k * cos + Rot(k) * sin).MoveToOuterDisposeScope());
        }
    }
}

namespace LongContext.IO
{
    public static class HfRopeConfig
    {
        public static RopeParameters Read(JsonObject config)
        {
            var rp = config["rope_parameters"] as JsonObject ?? config["rope_scaling"] as JsonObject;
            double theta = rp?["rope_theta"]?.GetValue<double>() ?? config["rope_theta"]?.GetValue<double>() ?? 10000;
            string type = rp?["rope_type"]?.GetValue<string>() ?? rp?["type"]?.GetValue<string>() ?? "default";
            return new RopeParameters
            {
                Theta = theta,
                Type = type == "linear" ? RopeType.Linear : type == "default" ? RopeType.Default : throw new NotSupportedException(type),
                Factor = rp?["factor"]?.GetValue<double>() ?? 1,
            };
        }
        public static void Write(JsonObject config, RopeParameters p)
        {
            var o = new JsonObject { ["rope_theta"] = p.Theta, ["rope_type"] = p.Type == RopeType.Linear ? "linear" : "default" };
            if (p.Type == RopeType.Linear) o["factor"] = p.Factor;
            config["rope_parameters"] = o;
            config.Remove("rope_scaling");
            config.Remove("rope_theta");
        }
    }
}
