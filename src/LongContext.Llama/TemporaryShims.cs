// TEMPORARY: stand-ins for the rope and attention pieces being built on other branches, with their agreed API.
// Deleted as soon as the real LongContext.Rope / LongContext.Attention / LongContext.IO.HfRopeConfig land on main.
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

namespace LongContext.Attention
{
    public enum AttentionMode { Full, ShiftedSparse }
    public enum S2WrapPolicy { NoWrap, Roll }
    public sealed record AttentionOptions
    {
        public AttentionMode Mode { get; init; }
        public double GroupSizeRatio { get; init; } = 0.25;
        public S2WrapPolicy WrapPolicy { get; init; }
        public double Dropout { get; init; }
        public double? Scale { get; init; }
    }
    public sealed class AttentionCore : nn.Module<Tensor, Tensor, Tensor, Tensor>
    {
        public AttentionCore(AttentionOptions options) : base(nameof(AttentionCore)) { Options = options; }
        public AttentionOptions Options { get; set; }
        public override Tensor forward(Tensor q, Tensor k, Tensor v)
        {
            using var scope = NewDisposeScope();
            long rep = q.shape[1] / k.shape[1];
            if (rep > 1) { k = k.repeat_interleave(rep, 1); v = v.repeat_interleave(rep, 1); }
            if (Options.Mode == AttentionMode.Full)
                return nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true).MoveToOuterDisposeScope();
            // S2 (NoWrap), for tests until the real core lands.
            long n = q.shape[2], g = (long)(n * Options.GroupSizeRatio), hh = q.shape[1] / 2;
            var mask = torch.zeros([n, n], dtype: ScalarType.Bool, device: q.device);
            var mask2 = torch.zeros([n, n], dtype: ScalarType.Bool, device: q.device);
            var tri = torch.ones([n, n], dtype: ScalarType.Bool, device: q.device).tril();
            var idx = torch.arange(n, device: q.device);
            var grp = idx.div(g, RoundingMode.floor); var grp2 = (idx + g / 2).div(g, RoundingMode.floor);
            mask = grp.unsqueeze(1).eq(grp.unsqueeze(0)) & tri;
            mask2 = grp2.unsqueeze(1).eq(grp2.unsqueeze(0)) & tri;
            var m = torch.stack([mask, mask2]).repeat_interleave(hh, 0);
            return nn.functional.scaled_dot_product_attention(q, k, v, m.unsqueeze(0)).MoveToOuterDisposeScope();
        }
    }
}
