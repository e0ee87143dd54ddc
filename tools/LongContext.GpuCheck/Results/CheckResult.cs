namespace LongContext.GpuCheck.Results;

/// <summary>
/// One row of the report: a measured error against a stated tolerance (or a skip/error with its reason).
/// <see cref="Value"/> and <see cref="Tolerance"/> are in the unit <see cref="Metric"/> names (e.g. max_abs: the
/// largest absolute difference, computed in float64 on the CPU).
/// </summary>
internal sealed record CheckResult(
    string Step,
    string Group,
    string Name,
    string Device,
    string Dtype,
    string Metric,
    double? Value,
    double? Tolerance,
    CheckStatus Status,
    string Detail,
    double Seconds);
