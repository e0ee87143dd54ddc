namespace LongContext.Benchmarks.Infrastructure;

/// <summary>The work one invocation of a benchmark does, for derived throughput columns.</summary>
/// <param name="Flops">Floating-point operations (multiply and add counted as two), or 0 when not compute-bound.</param>
/// <param name="Bytes">Bytes of minimal device-memory traffic (every input read once, every output written once), or 0.</param>
/// <param name="Tokens">Tokens processed (training-step suites), or 0.</param>
public readonly record struct Work(double Flops, double Bytes, double Tokens = 0)
{
    /// <summary>Nothing to report.</summary>
    public static Work None => default;
}

/// <summary>Implemented by benchmark classes whose invocations have a known FLOP count or minimal traffic.</summary>
public interface IWorkload
{
    /// <summary>
    /// The work of one invocation of <paramref name="benchmarkMethod"/> at the current parameter values. Must depend on
    /// the parameter properties only (it is called on a fresh instance without setup).
    /// </summary>
    Work WorkOf(string benchmarkMethod);
}
