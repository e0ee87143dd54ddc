namespace LongContext.Llama.Generation;

/// <summary>
/// How the next token is chosen and when generation stops (HF's <c>GenerationConfig</c> fields of the same names).
/// Every property is checked in its <c>init</c> accessor; the generator also refuses sampling settings combined with
/// <see cref="Greedy"/> (temperature, top-k, top-p, seed; HF ignores the first three with a warning) and stop ids
/// outside the vocabulary, naming the value.
/// </summary>
/// <remarks>
/// Order of the logits processing, as HF applies it: repetition penalty, then (when sampling) temperature, top-k,
/// top-p, softmax and a draw from a generator seeded with <see cref="Seed"/>.
/// </remarks>
public sealed record DecodingOptions
{
    private readonly int _maxNewTokens = 64;
    private readonly double _temperature = 1.0;
    private readonly int? _topK;
    private readonly double _topP = 1.0;
    private readonly double _repetitionPenalty = 1.0;
    private readonly IReadOnlyList<int> _stopTokenIds = [];
    private readonly IReadOnlyList<string> _stopStrings = [];

    /// <summary>Tokens to generate at most per row, at least 1. Default 64.</summary>
    public int MaxNewTokens
    {
        get => _maxNewTokens;
        init => _maxNewTokens = value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), value, $"{nameof(MaxNewTokens)} must be at least 1; got {value}.");
    }

    /// <summary>Take the most likely token (after the repetition penalty) instead of sampling. Default true (HF's <c>do_sample=False</c>).</summary>
    public bool Greedy { get; init; } = true;

    /// <summary>Divides the logits before sampling; positive and finite. Default 1.</summary>
    public double Temperature
    {
        get => _temperature;
        init => _temperature = value > 0 && double.IsFinite(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(Temperature), value, $"{nameof(Temperature)} must be a positive finite number; got {value}.");
    }

    /// <summary>Sample among the k most likely tokens only (ties with the k-th kept, as HF); null for no limit.</summary>
    public int? TopK
    {
        get => _topK;
        init => _topK = value is null || value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(TopK), value, $"{nameof(TopK)} must be at least 1 (or null for none); got {value}.");
    }

    /// <summary>Nucleus sampling: the smallest set of most likely tokens whose probability reaches p, in (0, 1]. Default 1 (off).</summary>
    public double TopP
    {
        get => _topP;
        init => _topP = value > 0 && value <= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(TopP), value, $"{nameof(TopP)} must be in (0, 1]; got {value}.");
    }

    /// <summary>
    /// HF's repetition penalty on every token already in the row (prompt and generated): a positive logit is divided
    /// by it, a negative one multiplied; positive and finite, 1 = off. Applies to greedy decoding too.
    /// </summary>
    public double RepetitionPenalty
    {
        get => _repetitionPenalty;
        init => _repetitionPenalty = value > 0 && double.IsFinite(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), value, $"{nameof(RepetitionPenalty)} must be a positive finite number; got {value}.");
    }

    /// <summary>Token ids that end a row (e.g. EOS); the stop token is the row's last token and adds no text.</summary>
    public IReadOnlyList<int> StopTokenIds
    {
        get => _stopTokenIds;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(StopTokenIds));
            int bad = value.FirstOrDefault(id => id < 0, 0);
            if (bad < 0) throw new ArgumentOutOfRangeException(nameof(StopTokenIds), bad, $"{nameof(StopTokenIds)} must hold token ids >= 0; got {bad}.");
            _stopTokenIds = value.ToArray();
        }
    }

    /// <summary>
    /// Strings that end a row as soon as the generated text contains one; the text is cut right before it (the
    /// stop string itself is not returned). Needs a tokenizer (token ids to text).
    /// </summary>
    public IReadOnlyList<string> StopStrings
    {
        get => _stopStrings;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(StopStrings));
            if (value.Any(string.IsNullOrEmpty))
                throw new ArgumentException($"{nameof(StopStrings)} must not hold empty strings.", nameof(StopStrings));
            _stopStrings = value.ToArray();
        }
    }

    /// <summary>Seed of the sampling generator: the same seed, prompt and model give the same tokens. Null draws one. Sampling only.</summary>
    public int? Seed { get; init; }
}
