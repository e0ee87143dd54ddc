using System.Text.Json;
using System.Text.Json.Serialization;

namespace LongContext.Training;

/// <summary>The JSON document stored in a training-state file's safetensors metadata (this project's own format).</summary>
internal sealed record TrainingStateFile
{
    public const int CurrentVersion = 1;
    public const string MetadataKey = "longcontext.training_state";

    public int Version { get; init; }
    public long Step { get; init; }
    public string? DataCursor { get; init; }
    public required ScheduleJson Schedule { get; init; }
    public required OptimizerJson Optimizer { get; init; }
    /// <summary>The seed the CUDA generator was given at save time (TorchSharp cannot read its state), or null without CUDA.</summary>
    public long? CudaSeed { get; init; }

    internal sealed record ScheduleJson(LearningRateScheduleKind Kind, long WarmupSteps, long? TotalSteps, double Cycles);

    internal sealed record OptimizerJson(double LearningRate, double Beta1, double Beta2, double Epsilon, double WeightDecay,
        IReadOnlyList<GroupJson> Groups, IReadOnlyDictionary<string, long> Steps);

    internal sealed record GroupJson(double LearningRate, double InitialLearningRate, IReadOnlyList<string> Parameters);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    public string Serialize() => JsonSerializer.Serialize(this, Json);

    public static TrainingStateFile Parse(string json, string path)
    {
        TrainingStateFile document;
        try
        {
            document = JsonSerializer.Deserialize<TrainingStateFile>(json, Json)
                ?? throw new InvalidDataException($"training state '{path}': the {MetadataKey} metadata is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"training state '{path}': the {MetadataKey} metadata is not a valid training-state document: {e.Message}", e);
        }
        string? missing = document.Schedule is null ? "schedule"
            : document.Optimizer is null ? "optimizer"
            : document.Optimizer.Groups is null ? "optimizer.groups"
            : document.Optimizer.Groups.Any(g => g?.Parameters is null) ? "optimizer.groups[].parameters"
            : document.Optimizer.Steps is null ? "optimizer.steps"
            : null;
        if (missing is not null)
            throw new InvalidDataException($"training state '{path}': the {MetadataKey} metadata has no '{missing}' (null or absent); it is not a training-state document this library wrote.");
        return document;
    }
}
