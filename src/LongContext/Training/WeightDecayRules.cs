namespace LongContext.Training;

/// <summary>
/// Which trainable parameters receive AdamW's decoupled weight decay. By default only matrices of the layers
/// (linear weights, LoRA A and B) do: biases, normalisation weights and embedding tables are exempt, each unless
/// asked. See <see cref="ParameterGroups.Split"/> for the name and shape rules.
/// </summary>
public sealed record WeightDecayRules
{
    private readonly IReadOnlyList<string> _noDecayNameContains = [];

    /// <summary>Decay biases too (names whose last segment contains <c>bias</c>). Default false.</summary>
    public bool DecayBiases { get; init; }

    /// <summary>Decay normalisation weights too (a name segment containing <c>norm</c>, or a 1-D parameter that is not a bias). Default false.</summary>
    public bool DecayNorms { get; init; }

    /// <summary>Decay embedding tables too (a name segment containing <c>embed</c>, or equal to <c>wte</c> / <c>wpe</c>). Default false.</summary>
    public bool DecayEmbeddings { get; init; }

    /// <summary>
    /// Further exemptions: a parameter whose full name contains one of these (ordinal, case-insensitive) gets no
    /// decay. Default empty.
    /// </summary>
    /// <exception cref="ArgumentException">The list is null or holds an empty entry.</exception>
    public IReadOnlyList<string> NoDecayNameContains
    {
        get => _noDecayNameContains;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(NoDecayNameContains));
            if (value.Any(string.IsNullOrWhiteSpace))
                throw new ArgumentException($"{nameof(NoDecayNameContains)} must not hold empty entries; got [{string.Join(", ", value.Select(v => $"'{v}'"))}].", nameof(NoDecayNameContains));
            _noDecayNameContains = value.ToArray();
        }
    }

    /// <summary>Whether every rule is at its default (only matrices decay, no further exemptions).</summary>
    internal bool IsDefault => !DecayBiases && !DecayNorms && !DecayEmbeddings && _noDecayNameContains.Count == 0;

    /// <summary>The rules set away from their defaults, e.g. <c>DecayNorms, NoDecayNameContains [lm_head]</c>.</summary>
    internal string Describe() => string.Join(", ", new[]
    {
        DecayBiases ? nameof(DecayBiases) : null,
        DecayNorms ? nameof(DecayNorms) : null,
        DecayEmbeddings ? nameof(DecayEmbeddings) : null,
        _noDecayNameContains.Count > 0 ? $"{nameof(NoDecayNameContains)} [{string.Join(", ", _noDecayNameContains)}]" : null,
    }.OfType<string>());
}
