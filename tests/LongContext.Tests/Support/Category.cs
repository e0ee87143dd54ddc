namespace LongContext.Tests.Support;

/// <summary>Trait values for <c>[Trait("Category", ...)]</c>; filter with <c>dotnet test --filter Category=Rope</c>.</summary>
public static class Category
{
    /// <summary>Trait name.</summary>
    public const string Name = "Category";
    /// <summary>Build and native-loading checks.</summary>
    public const string Build = "Build";
    /// <summary>Rotary embeddings.</summary>
    public const string Rope = "Rope";
    /// <summary>Attention cores.</summary>
    public const string Attention = "Attention";
    /// <summary>LoRA layers and adapters.</summary>
    public const string Lora = "Lora";
    /// <summary>4-bit quantization.</summary>
    public const string Quantization = "Quantization";
    /// <summary>Training-loop parts: schedules, optimizer groups, accumulation, clipping, chunked loss, resume.</summary>
    public const string Training = "Training";
    /// <summary>Whole models and the recipe.</summary>
    public const string Model = "Model";
    /// <summary>KV-cache generation, sampling and streaming.</summary>
    public const string Generation = "Generation";
    /// <summary>Tests against external reference numbers (fixtures).</summary>
    public const string Reference = "Reference";
}
