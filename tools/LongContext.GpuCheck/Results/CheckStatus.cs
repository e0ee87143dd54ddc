namespace LongContext.GpuCheck.Results;

/// <summary>Outcome of one check row.</summary>
internal enum CheckStatus
{
    /// <summary>Measured within its tolerance.</summary>
    Pass,

    /// <summary>Measured outside its tolerance.</summary>
    Fail,

    /// <summary>Not run here (missing optional data or API, not applicable); the detail says why.</summary>
    Skip,

    /// <summary>The check threw; the detail holds the exception.</summary>
    Error,
}
