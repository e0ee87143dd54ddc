namespace LongContext.Demo.Cli;

/// <summary>The program's exit codes.</summary>
public static class ExitCodes
{
    /// <summary>Success; for <c>demo</c>, every expectation held.</summary>
    public const int Success = 0;
    /// <summary>An error (a file, the data, a failure while running).</summary>
    public const int Error = 1;
    /// <summary>Bad arguments (the message says which).</summary>
    public const int BadArguments = 2;
    /// <summary><c>demo</c> ran but the expected pattern was not reproduced (the numbers are printed and written).</summary>
    public const int PatternNotReproduced = 3;
}
