namespace LongContext.Tests.Support;

/// <summary>
/// Tests that seed and draw from TorchSharp's global generator (<c>torch.random.manual_seed</c>) and compare
/// random streams: they run alone, after the parallel tests, so no other test draws from the generator meanwhile.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRngCollection
{
    /// <summary>Collection name for <c>[Collection(GlobalRngCollection.Name)]</c>.</summary>
    public const string Name = "Global RNG";
}
