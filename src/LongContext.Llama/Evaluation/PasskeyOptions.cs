namespace LongContext.Llama.Evaluation;

/// <summary>Settings of the passkey test, validated as they are set. Defaults are LongLoRA's script's.</summary>
public sealed record PasskeyOptions
{
    private readonly IReadOnlyList<int> _lengths = [1000, 2000, 4000];
    private readonly int _trials = 10;
    private readonly PasskeyLengthMode _lengthMode = PasskeyLengthMode.LongLoraCharacterRatio;
    private readonly long _firstSeed;

    /// <summary>Target prompt lengths in tokens (the script's <c>interval * (i + 1)</c>), each positive.</summary>
    public IReadOnlyList<int> Lengths
    {
        get => _lengths;
        init => _lengths = LengthsSetting.Checked(value, 1, "positive lengths", nameof(Lengths));
    }

    /// <summary>Trials per length (the script's <c>num_tests</c>), at least 1. Default 10.</summary>
    public int Trials
    {
        get => _trials;
        init => _trials = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Trials), value, $"{nameof(Trials)} must be at least 1; got {value}.");
    }

    /// <summary>How lengths become filler sizes. Default LongLoRA's character ratio.</summary>
    public PasskeyLengthMode LengthMode
    {
        get => _lengthMode;
        init => _lengthMode = Enum.IsDefined(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(LengthMode), value, $"{nameof(LengthMode)} must be LongLoraCharacterRatio or TokenBudget; got {(int)value}.");
    }

    /// <summary>numpy seed of the first trial; trial t uses <c>FirstSeed + t</c> (the script: 0..9 at every length). Default 0.</summary>
    public long FirstSeed
    {
        get => _firstSeed;
        init => _firstSeed = value >= 0 && value <= uint.MaxValue - 100_000L ? value
            : throw new ArgumentOutOfRangeException(nameof(FirstSeed), value, $"{nameof(FirstSeed)} must be in [0, 2^32 - 100000); got {value}.");
    }
}
