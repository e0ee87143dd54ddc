using static TorchSharp.torch;

namespace LongContext.Llama.Generation;

/// <summary>How <see cref="LlamaGenerator"/> runs the model: prefill chunking and the KV cache. Validated in <c>init</c>.</summary>
public sealed record GeneratorOptions
{
    private static readonly ScalarType[] CacheTypes = [ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64];
    private readonly int _prefillChunkSize = 512;
    private readonly ScalarType? _cacheDtype;
    private readonly int? _cacheCapacity;

    /// <summary>
    /// Prompt tokens per prefill chunk, positive. Default 512. Each chunk attends the cache and itself, so attention
    /// scores are (B, heads, chunk, cached + chunk) at most: a 32k prompt never forms a (32k, 32k) matrix.
    /// </summary>
    public int PrefillChunkSize
    {
        get => _prefillChunkSize;
        init => _prefillChunkSize = value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(PrefillChunkSize), value, $"{nameof(PrefillChunkSize)} must be positive; got {value}.");
    }

    /// <summary>KV cache dtype: Float32, Float16 or BFloat16 (Float64 for references); null takes the model's dtype.</summary>
    public ScalarType? CacheDtype
    {
        get => _cacheDtype;
        init => _cacheDtype = value is null || CacheTypes.Contains(value.Value) ? value
            : throw new ArgumentOutOfRangeException(nameof(CacheDtype), value, $"{nameof(CacheDtype)} must be Float32, Float16 or BFloat16 (or Float64); got {value}.");
    }

    /// <summary>
    /// Positions the cache holds per row; null allocates exactly the longest prompt plus
    /// <see cref="DecodingOptions.MaxNewTokens"/>. A prompt (plus the tokens to generate) longer than a set capacity is an error.
    /// </summary>
    public int? CacheCapacity
    {
        get => _cacheCapacity;
        init => _cacheCapacity = value is null || value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(CacheCapacity), value, $"{nameof(CacheCapacity)} must be positive (or null); got {value}.");
    }
}
