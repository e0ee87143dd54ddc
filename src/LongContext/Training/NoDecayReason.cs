namespace LongContext.Training;

/// <summary>Why a parameter is in the no-decay group (or <see cref="None"/> when it decays).</summary>
public enum NoDecayReason
{
    /// <summary>The parameter decays.</summary>
    None,

    /// <summary>A bias (last name segment contains <c>bias</c>).</summary>
    Bias,

    /// <summary>A normalisation weight (a name segment contains <c>norm</c>), or another 1-D parameter.</summary>
    Norm,

    /// <summary>An embedding table (a name segment contains <c>embed</c>, or is <c>wte</c> / <c>wpe</c>).</summary>
    Embedding,

    /// <summary>Named in <see cref="WeightDecayRules.NoDecayNameContains"/>.</summary>
    Listed,
}
