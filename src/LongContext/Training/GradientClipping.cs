using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Training;

/// <summary>Gradient-norm clipping over all trainable parameters together (PyTorch's <c>clip_grad_norm_</c>, L2).</summary>
public static class GradientClipping
{
    /// <summary>
    /// Computes the total L2 norm of every gradient (as if all were one vector) and, when it exceeds
    /// <paramref name="maxNorm"/>, scales every gradient in place by <c>maxNorm / (norm + 1e-6)</c>, exactly as
    /// <c>torch.nn.utils.clip_grad_norm_</c> does (HF Trainer's <c>max_grad_norm</c>, default 1.0). Parameters
    /// without a gradient are skipped. Norms are computed per gradient in its dtype promoted to at least float32.
    /// </summary>
    /// <param name="parameters">Parameters whose <c>.grad</c> is clipped (e.g. <see cref="GroupedAdamW.Parameters"/>).</param>
    /// <param name="maxNorm">Largest allowed total norm, positive and finite.</param>
    /// <param name="errorIfNonFinite">Throw when the total norm is NaN or infinite (default) instead of scaling
    /// every gradient to NaN (PyTorch's default, <c>error_if_nonfinite=False</c>).</param>
    /// <returns>The total norm before clipping (0 when no parameter has a gradient).</returns>
    /// <exception cref="InvalidOperationException">The norm is not finite and <paramref name="errorIfNonFinite"/> is set.</exception>
    public static double ClipByTotalNorm(IEnumerable<Tensor> parameters, double maxNorm, bool errorIfNonFinite = true)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Guard.Positive(maxNorm, nameof(maxNorm));
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var grads = new List<Tensor>();
        foreach (Tensor p in parameters)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parameters));
            Tensor? g = p.grad;   // a new handle per call, owned by the scope
            if (g is not null) grads.Add(g);
        }
        if (grads.Count == 0) return 0.0;
        Device device = grads[0].device;
        var norms = grads.Select(g => linalg.vector_norm(g.to(NormDtype(g.dtype)), 2).to(device)).ToArray();
        ScalarType total = norms.Select(n => n.dtype).Aggregate(promote_types);
        Tensor totalNorm = linalg.vector_norm(stack(norms.Select(n => n.to(total)).ToArray()), 2);
        double value = totalNorm.to(ScalarType.Float64).item<double>();
        if (!double.IsFinite(value) && errorIfNonFinite)
            throw new InvalidOperationException(
                $"the total gradient norm is {value} (non-finite) over {grads.Count} gradients; the loss or a gradient overflowed. Pass errorIfNonFinite: false to scale anyway.");
        Tensor coefficient = (maxNorm / (totalNorm + 1e-6)).clamp_max(1.0);
        foreach (Tensor g in grads) g.mul_(coefficient.to(g.device));
        return value;
    }

    private static ScalarType NormDtype(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
}
