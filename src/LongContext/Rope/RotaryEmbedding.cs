using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Rope;

/// <summary>
/// Rotary position embedding for any <see cref="RopeType"/>: turns position ids into cos/sin (float32, carrying the
/// attention scaling, exactly as HF's <c>LlamaRotaryEmbedding</c>) and rotates q and k in one call.
/// <para>
/// cos/sin tables are cached per device (float32) and per device and dtype (for <see cref="Apply(Tensor, Tensor, Tensor)"/>),
/// and grow on demand to cover the largest position id seen (unless <see cref="RotaryEmbeddingOptions.PositionLimit"/>
/// forbids it). Position ids are explicit, so packed sequences and offsets (KV-cache decoding) work.
/// <see cref="RopeType.Dynamic"/> follows HF's dynamic update: when the largest position + 1 exceeds the longest
/// sequence seen, the frequencies are recomputed for it; when it drops below <c>max_position_embeddings</c> after
/// having grown, they reset to the original ones. <see cref="RopeType.LongRope"/> switches between short and long
/// factors at the original window as HF does. Both make a call's output depend on the call's largest position.
/// </para>
/// <para>Not thread-safe (the caches and dynamic state are mutated by calls). Holds native memory: dispose it.</para>
/// </summary>
public sealed class RotaryEmbedding : nn.Module<Tensor, (Tensor Cos, Tensor Sin)>
{
    private readonly RotaryEmbeddingOptions _options;
    private readonly int _rotaryDim;
    private readonly State _state = new();

    /// <summary>Creates the module.</summary>
    /// <param name="options">Head dimension, window, rope parameters, layout (validated when they were built).</param>
    public RotaryEmbedding(RotaryEmbeddingOptions options) : base(nameof(RotaryEmbedding))
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _rotaryDim = options.Parameters.RotaryDim(options.HeadDim);
        RopeFrequencies initial = RopeFrequencyBuilder.Build(options.Parameters, options.HeadDim, options.MaxPositionEmbeddings);
        _state.Original = initial.InverseFrequencies.DetachFromDisposeScope();
        _state.Current = _state.Original;
        _state.OriginalScaling = initial.AttentionScaling;
        AttentionScaling = initial.AttentionScaling;
        _state.MaxSequenceLengthCached = options.MaxPositionEmbeddings;
        RegisterComponents();
    }

    /// <summary>The options this module was built with.</summary>
    public RotaryEmbeddingOptions Options => _options;

    /// <summary>Number of leading head dimensions that are rotated (even); the rest pass through unchanged.</summary>
    public int RotaryDim => _rotaryDim;

    /// <summary>Factor that cos and sin currently carry (YaRN / LongRoPE attention factor; 1 for the others).</summary>
    public double AttentionScaling { get; private set; }

    /// <summary>
    /// The inverse frequencies in force (float32 (rotaryDim/2), CPU); they change after calls for dynamic and
    /// longrope. Owned by the module: read it, do not dispose or modify it.
    /// </summary>
    public Tensor InverseFrequencies => _state.Current!;

    /// <summary>
    /// cos and sin for the given positions, float32 (B, N, rotaryDim) on the ids' device, laid out for
    /// <see cref="RotaryEmbeddingOptions.Layout"/> and multiplied by <see cref="AttentionScaling"/>; HF's
    /// <c>LlamaRotaryEmbedding.forward</c> before its cast to the input dtype.
    /// </summary>
    /// <param name="positionIds">int64 (or int32) (B, N), or (N) which gives B = 1; non-negative.</param>
    public override (Tensor Cos, Tensor Sin) forward(Tensor positionIds)
    {
        CheckPositionIds(positionIds, nameof(positionIds));
        using var scope = NewDisposeScope();
        Tensor ids = positionIds.dim() == 1 ? positionIds.unsqueeze(0) : positionIds;
        long needed = Needed(ids);
        Prepare(needed);
        Table table = FloatTable(ids.device, needed);
        Tensor flat = ids.reshape(-1);
        Tensor cos = table.Cos.index_select(0, flat).view(ids.size(0), ids.size(1), _rotaryDim);
        Tensor sin = table.Sin.index_select(0, flat).view(ids.size(0), ids.size(1), _rotaryDim);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Rotates queries and keys (differentiable; used in training). Computes in the inputs' dtype with cos/sin that
    /// were computed in float32 and then cast to it, as HF's <c>apply_rotary_pos_emb</c> does.
    /// </summary>
    /// <param name="q">(B, Hq, N, D), any floating dtype, D = HeadDim.</param>
    /// <param name="k">(B, Hk, N, D), same B, N, D and device as q (dtype may differ).</param>
    /// <param name="positionIds">int64 (or int32) (B, N), (1, N) or (N): the position of each token.</param>
    /// <returns>Rotated copies of q and k, same shapes and dtypes.</returns>
    public (Tensor Q, Tensor K) Apply(Tensor q, Tensor k, Tensor positionIds)
    {
        CheckInput(q, nameof(q), positionIds);
        CheckInput(k, nameof(k), positionIds);
        if (k.size(0) != q.size(0) || k.size(2) != q.size(2) || k.device_type != q.device_type || k.device_index != q.device_index)
            throw new ArgumentException($"k {Shape(k)} on {k.device} must match q {Shape(q)} on {q.device} in batch, length and device.", nameof(k));
        using var scope = NewDisposeScope();
        bool differentiable = Records(q) || Records(k);
        (Tensor qCos, Tensor qSin) = Gathered(q, positionIds, differentiable);
        (Tensor kCos, Tensor kSin) = k.dtype == q.dtype ? (qCos, qSin) : Gathered(k, positionIds, differentiable);
        Tensor qOut = Rotate(q, qCos, qSin, differentiable);
        Tensor kOut = Rotate(k, kCos, kSin, differentiable);
        return (qOut.MoveToOuterDisposeScope(), kOut.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates one tensor (differentiable); see <see cref="Apply(Tensor, Tensor, Tensor)"/>.</summary>
    /// <param name="x">(B, H, N, D), any floating dtype.</param>
    /// <param name="positionIds">int64 (or int32) (B, N), (1, N) or (N).</param>
    /// <returns>The rotated copy, same shape and dtype.</returns>
    public Tensor Apply(Tensor x, Tensor positionIds)
    {
        CheckInput(x, nameof(x), positionIds);
        using var scope = NewDisposeScope();
        bool differentiable = Records(x);
        (Tensor cos, Tensor sin) = Gathered(x, positionIds, differentiable);
        return Rotate(x, cos, sin, differentiable).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ClearTables();
            if (!ReferenceEquals(_state.Current, _state.Original)) _state.Current?.Dispose();
            _state.Original?.Dispose();
            _state.Long?.Dispose();
            _state.Current = _state.Original = _state.Long = null;
        }
        base.Dispose(disposing);
    }

    private static bool Records(Tensor x) => x.requires_grad && is_grad_enabled();

    private Tensor Rotate(Tensor x, Tensor cos, Tensor sin, bool differentiable)
        => differentiable
            ? RotaryKernels.RotateDifferentiable(x, cos, sin, _options.Layout, _rotaryDim)
            : RotaryKernels.Rotate(x, cos, sin, _options.Layout, _rotaryDim);

    /// <summary>
    /// cos (B|1, 1, N, D) and, in x's dtype on x's device for the given ids, sinHalf (B|1, 1, N, r/2), or the
    /// sign-folded sin (B|1, 1, N, D) when <paramref name="differentiable"/>.
    /// </summary>
    private (Tensor Cos, Tensor Sin) Gathered(Tensor x, Tensor positionIds, bool differentiable)
    {
        Tensor ids = positionIds.dim() == 1 ? positionIds.unsqueeze(0) : positionIds;
        ids = ids.to(x.device);
        long needed = Needed(ids);
        Prepare(needed);
        Table table = FloatTable(x.device, needed);
        var key = (x.device.ToString(), x.dtype);
        if (!_state.ApplyTables.TryGetValue(key, out ApplyTable? apply) || apply.Length < table.Length)
        {
            apply?.Dispose();
            (Tensor c, Tensor s) = RotaryKernels.ApplyTables(table.Cos, table.Sin, _options.HeadDim, _options.Layout, x.dtype);
            apply = new ApplyTable(table.Length, c.DetachFromDisposeScope(), s.DetachFromDisposeScope());
            _state.ApplyTables[key] = apply;
        }
        Tensor flat = ids.reshape(-1);
        long b = ids.size(0), n = ids.size(1);
        Tensor cos = apply.Cos.index_select(0, flat).view(b, 1, n, _options.HeadDim);
        if (differentiable)
        {
            apply.SinSigned ??= RotaryKernels.SignedSinTable(table.Sin, _options.HeadDim, _options.Layout, x.dtype).DetachFromDisposeScope();
            return (cos, apply.SinSigned.index_select(0, flat).view(b, 1, n, _options.HeadDim));
        }
        Tensor sin = apply.SinHalf.index_select(0, flat).view(b, 1, n, _rotaryDim / 2);
        return (cos, sin);
    }

    /// <summary>The float32 table on a device covering positions below <paramref name="needed"/>.</summary>
    private Table FloatTable(Device device, long needed)
    {
        string key = device.ToString();
        if (_state.Tables.TryGetValue(key, out Table? table) && table.Length >= needed) return table;
        long length = Math.Max(needed, Math.Max(256, 2 * (table?.Length ?? 0)));
        if (_options.PositionLimit is long limit) length = Math.Min(length, limit);
        table?.Dispose();
        (Tensor cos, Tensor sin) = RotaryKernels.Tables(_state.Current!, length, AttentionScaling, _options.Layout, device);
        table = new Table(length, cos.DetachFromDisposeScope(), sin.DetachFromDisposeScope());
        _state.Tables[key] = table;
        // Per-dtype tables derived from a shorter float32 table are stale now.
        foreach (var k in _state.ApplyTables.Keys.Where(k => k.Device == key).ToList())
        {
            _state.ApplyTables[k].Dispose();
            _state.ApplyTables.Remove(k);
        }
        return table;
    }

    /// <summary>Largest position + 1 (syncs with the ids' device once); checks the range.</summary>
    private long Needed(Tensor ids)
    {
        long max = ids.max().item<long>();
        long min = ids.min().item<long>();
        if (min < 0)
            throw new ArgumentOutOfRangeException("positionIds", min, $"Position ids must be non-negative; got {min}.");
        if (_options.PositionLimit is long limit && max >= limit)
            throw new ArgumentOutOfRangeException("positionIds", max,
                $"Position id {max} is past the non-growable PositionLimit {limit} (positions 0..{limit - 1} are allowed).");
        return max + 1;
    }

    /// <summary>HF's <c>dynamic_rope_update</c>: recompute or reset the frequencies of dynamic and longrope for this call.</summary>
    /// <param name="sequenceLength">Largest position id + 1 of this call (HF's <c>seq_len</c>).</param>
    private void Prepare(long sequenceLength)
    {
        RopeType type = _options.Parameters.Type;
        if (type is not (RopeType.Dynamic or RopeType.LongRope)) return;
        if (type == RopeType.Dynamic)
        {
            long window = _options.MaxPositionEmbeddings;
            if (sequenceLength > _state.MaxSequenceLengthCached)
            {
                RopeFrequencies grown = RopeFrequencyBuilder.Build(_options.Parameters, _options.HeadDim, _options.MaxPositionEmbeddings, sequenceLength);
                SetCurrent(grown.InverseFrequencies.DetachFromDisposeScope(), grown.AttentionScaling);
                _state.MaxSequenceLengthCached = sequenceLength;
            }
            if (sequenceLength < window && _state.MaxSequenceLengthCached > window)
            {
                SetCurrent(_state.Original!, _state.OriginalScaling);
                _state.MaxSequenceLengthCached = window;
            }
        }
        else
        {
            int original = _options.Parameters.OriginalWindow(_options.MaxPositionEmbeddings);
            if (sequenceLength > original)
            {
                if (_state.Long is null)
                {
                    RopeFrequencies longFreq = RopeFrequencyBuilder.Build(_options.Parameters, _options.HeadDim, _options.MaxPositionEmbeddings, original + 1L);
                    _state.Long = longFreq.InverseFrequencies.DetachFromDisposeScope();
                }
                if (!ReferenceEquals(_state.Current, _state.Long)) SetCurrent(_state.Long, AttentionScaling);
            }
            else if (!ReferenceEquals(_state.Current, _state.Original))
            {
                SetCurrent(_state.Original!, AttentionScaling);
            }
        }
    }

    private void SetCurrent(Tensor frequencies, double scaling)
    {
        Tensor? previous = _state.Current;
        _state.Current = frequencies;
        AttentionScaling = scaling;
        if (previous is not null && !ReferenceEquals(previous, _state.Original) && !ReferenceEquals(previous, _state.Long)
            && !ReferenceEquals(previous, frequencies))
            previous.Dispose();
        ClearTables();
    }

    private void ClearTables()
    {
        foreach (Table t in _state.Tables.Values) t.Dispose();
        foreach (ApplyTable t in _state.ApplyTables.Values) t.Dispose();
        _state.Tables.Clear();
        _state.ApplyTables.Clear();
    }

    private static void CheckPositionIds(Tensor positionIds, string name)
    {
        ArgumentNullException.ThrowIfNull(positionIds, name);
        if (positionIds.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"{name} must be int64 (or int32); got {positionIds.dtype}.", name);
        if (positionIds.dim() is not (1 or 2) || positionIds.numel() == 0)
            throw new ArgumentException($"{name} must be a non-empty (B, N) or (N) tensor; got {Shape(positionIds)}.", name);
    }

    private void CheckInput(Tensor x, string name, Tensor positionIds)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        CheckPositionIds(positionIds, nameof(positionIds));
        if (x.dim() != 4 || x.size(3) != _options.HeadDim)
            throw new ArgumentException($"{name} must be (B, H, N, {_options.HeadDim}); got {Shape(x)}.", name);
        if (!x.is_floating_point())
            throw new ArgumentException($"{name} must be a floating-point tensor; got {x.dtype}.", name);
        long n = positionIds.size(-1), b = positionIds.dim() == 2 ? positionIds.size(0) : 1;
        if (n != x.size(2) || (b != 1 && b != x.size(0)))
            throw new ArgumentException($"positionIds {Shape(positionIds)} must be (B, N), (1, N) or (N) for {name} {Shape(x)}.", nameof(positionIds));
    }

    private static string Shape(Tensor t) => $"({string.Join(", ", t.shape)})";

    /// <summary>Mutable state kept off the module's fields so that it is not registered as a buffer (HF's inv_freq is not persistent).</summary>
    private sealed class State
    {
        public Tensor? Original, Current, Long;
        public double OriginalScaling;
        public long MaxSequenceLengthCached;
        public readonly Dictionary<string, Table> Tables = new(StringComparer.Ordinal);
        public readonly Dictionary<(string Device, ScalarType DType), ApplyTable> ApplyTables = new();
    }

    private sealed record Table(long Length, Tensor Cos, Tensor Sin) : IDisposable
    {
        public void Dispose() { Cos.Dispose(); Sin.Dispose(); }
    }

    private sealed record ApplyTable(long Length, Tensor Cos, Tensor SinHalf) : IDisposable
    {
        public Tensor? SinSigned { get; set; }
        public void Dispose() { Cos.Dispose(); SinHalf.Dispose(); SinSigned?.Dispose(); }
    }
}
