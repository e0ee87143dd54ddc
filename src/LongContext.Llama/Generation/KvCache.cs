using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Llama.Generation;

/// <summary>
/// Keys and values of every decoder layer, preallocated for a fixed number of positions (<see cref="Capacity"/>)
/// so that decoding appends in place and never reallocates. Per layer: keys and values (B, Hkv, capacity, D) in
/// <see cref="DType"/> on one device. Keys are stored rotated (at their own positions); <see cref="Length"/>
/// positions are filled, the same for every layer and row (padding is described by the attention mask).
/// </summary>
/// <remarks>
/// A cache in another dtype than the model (e.g. bfloat16 under a float32 model) halves its memory but converts the
/// filled keys and values to the model's dtype at every layer and step (a copy of the filled part). Holds native
/// memory: dispose it.
/// </remarks>
public sealed class KvCache : IDisposable
{
    private static readonly ScalarType[] Dtypes = [ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64];
    private readonly LayerKvCache[] _layers;
    private bool _disposed;

    /// <summary>Allocates the cache (zero-filled).</summary>
    /// <param name="config">The model's config (layers, key/value heads, head dim).</param>
    /// <param name="batchSize">Rows B, positive.</param>
    /// <param name="capacity">Positions per row, positive: prompt (with padding) plus every token to generate.</param>
    /// <param name="dtype">float32, float16 or bfloat16 (float64 for reference computations).</param>
    /// <param name="device">Device of the model; CPU when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive or the dtype is not a float type listed.</exception>
    public KvCache(LlamaConfig config, int batchSize, int capacity, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"{nameof(batchSize)} must be positive; got {batchSize}.");
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"{nameof(capacity)} must be positive; got {capacity}.");
        if (!Dtypes.Contains(dtype))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, $"{nameof(dtype)} must be Float32, Float16 or BFloat16 (or Float64); got {dtype}.");
        BatchSize = batchSize;
        Capacity = capacity;
        DType = dtype;
        var shape = new long[] { batchSize, config.NumKeyValueHeads, capacity, config.HeadDim };
        _layers = new LayerKvCache[config.NumHiddenLayers];
        try
        {
            for (int i = 0; i < _layers.Length; i++)
                _layers[i] = new LayerKvCache(this, zeros(shape, dtype, device), zeros(shape, dtype, device));
        }
        catch
        {
            Dispose();
            throw;
        }
        Bytes = 2L * _layers.Length * shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtype);
    }

    /// <summary>Rows B.</summary>
    public int BatchSize { get; }

    /// <summary>Positions each row can hold.</summary>
    public int Capacity { get; }

    /// <summary>Storage dtype of keys and values.</summary>
    public ScalarType DType { get; }

    /// <summary>Bytes of key and value storage: 2 x layers x B x Hkv x capacity x D x element size.</summary>
    public long Bytes { get; }

    /// <summary>Filled positions (cached tokens per row, padding included).</summary>
    public int Length { get; private set; }

    /// <summary>The per-layer slots, in layer order.</summary>
    public IReadOnlyList<LayerKvCache> Layers => _layers;

    /// <summary>Forgets every position from <paramref name="length"/> on (e.g. to rewind a speculative continuation).</summary>
    /// <param name="length">Positions to keep, in [0, <see cref="Length"/>].</param>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"{nameof(length)} must be in [0, {Length}] (the filled positions); got {length}.");
        if (length == 0) Reset();
        else Length = length;
    }

    /// <summary>Empties the cache (the storage is kept).</summary>
    public void Reset()
    {
        Length = 0;
        _ropeFrequencies?.Dispose();
        _ropeFrequencies = null;
    }

    private Tensor? _ropeFrequencies;
    private double _ropeScaling;

    /// <summary>
    /// Whether the rope's current frequencies (inverse frequencies and attention scaling) are those the cached keys
    /// were rotated with. Always true for an empty cache and for rope types whose frequencies never change.
    /// </summary>
    /// <param name="rotary">The model's rotary embedding, after it computed the positions of the next call.</param>
    public bool MatchesRope(Rope.RotaryEmbedding rotary)
    {
        ArgumentNullException.ThrowIfNull(rotary);
        return Length == 0 || _ropeFrequencies is null
            || (_ropeScaling == rotary.AttentionScaling && _ropeFrequencies.allclose(rotary.InverseFrequencies, rtol: 0, atol: 0));
    }

    /// <summary>Records the rope's frequencies for the content, or throws when they changed under cached keys.</summary>
    internal void CheckRope(Rope.RotaryEmbedding rotary)
    {
        if (!MatchesRope(rotary))
            throw new InvalidOperationException(
                $"the rope's frequencies changed since the {Length} cached positions were computed ({rotary.Options.Parameters.Type} at a new length); " +
                "their keys and every later layer's values are stale. Reset the cache and run the whole sequence again (LlamaGenerator does this).");
        if (_ropeFrequencies is null || Length == 0)
        {
            _ropeFrequencies?.Dispose();
            _ropeFrequencies = rotary.InverseFrequencies.detach().clone().DetachFromDisposeScope();
            _ropeScaling = rotary.AttentionScaling;
        }
    }

    /// <summary>Marks <paramref name="count"/> more positions filled, after every layer appended them.</summary>
    internal void Advance(int count)
    {
        if (Length + count > Capacity)
            throw new InvalidOperationException($"the KV cache holds {Capacity} positions; {Length} are filled and {count} more do not fit.");
        Length += count;
    }

    /// <summary>Checks that <paramref name="count"/> new positions fit, naming both sizes and the caller's argument.</summary>
    /// <param name="count">New positions.</param>
    /// <param name="paramName">The caller's argument that carries them (its input ids, or a layer's keys).</param>
    /// <param name="what">What the positions are, for the message.</param>
    internal void EnsureRoom(long count, string paramName, string what)
    {
        if (Length + count > Capacity)
            throw new ArgumentException(
                $"{count} new {what} do not fit into the KV cache: it holds {Capacity} positions and {Length} are filled.", paramName);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var layer in _layers) layer?.Dispose();
        _ropeFrequencies?.Dispose();
    }

    private static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        _ => 2,
    };
}

/// <summary>One layer's keys and values in a <see cref="KvCache"/>.</summary>
public sealed class LayerKvCache : IDisposable
{
    private readonly KvCache _owner;

    internal LayerKvCache(KvCache owner, Tensor keys, Tensor values)
    {
        _owner = owner;
        Keys = keys;
        Values = values;
    }

    /// <summary>Key storage (B, Hkv, capacity, D); positions [0, <see cref="KvCache.Length"/>) are filled.</summary>
    public Tensor Keys { get; }

    /// <summary>Value storage (B, Hkv, capacity, D).</summary>
    public Tensor Values { get; }

    /// <summary>
    /// Writes the new keys and values (B, Hkv, N, D) after the filled positions and returns every key and value so
    /// far, (B, Hkv, Length + N, D), in the dtype of <paramref name="k"/> (views of the storage when the dtypes match).
    /// </summary>
    /// <param name="k">Rotated keys of the new positions.</param>
    /// <param name="v">Values of the new positions.</param>
    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        if (k.dim() != 4 || !k.shape.SequenceEqual(v.shape) || k.size(0) != Keys.size(0) || k.size(1) != Keys.size(1) || k.size(3) != Keys.size(3))
            throw new ArgumentException(
                $"keys/values ({string.Join(", ", k.shape)}) / ({string.Join(", ", v.shape)}) do not fit a cache of ({string.Join(", ", Keys.shape)}).", nameof(k));
        long n = k.size(2);
        int start = _owner.Length;
        _owner.EnsureRoom(n, nameof(k), "positions of keys/values");
        using (no_grad())
        {
            using var keySlot = Keys.narrow(2, start, n);
            using var valueSlot = Values.narrow(2, start, n);
            keySlot.copy_(k);
            valueSlot.copy_(v);
        }
        Tensor keys = Keys.narrow(2, 0, start + n), values = Values.narrow(2, 0, start + n);
        return k.dtype == Keys.dtype ? (keys, values) : (keys.to(k.dtype), values.to(k.dtype));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Keys.Dispose();
        Values.Dispose();
    }
}
