namespace LongContext.Benchmarks.Infrastructure;

/// <summary>What one invocation measures.</summary>
public enum Pass
{
    /// <summary>Forward only, no autograd graph (inference).</summary>
    Forward,

    /// <summary>Forward with autograd, then the backward pass from a fixed random output gradient.</summary>
    ForwardBackward,
}
