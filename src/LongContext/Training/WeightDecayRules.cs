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
}
