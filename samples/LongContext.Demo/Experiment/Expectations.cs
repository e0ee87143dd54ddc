using System.Globalization;

namespace LongContext.Demo.Experiment;

/// <summary>One expectation of the issue's pattern and whether the measurements reproduced it.</summary>
/// <param name="Claim">What the papers lead one to expect.</param>
/// <param name="Held">Whether it held.</param>
/// <param name="Measured">The numbers it was judged on.</param>
public sealed record Expectation(string Claim, bool Held, string Measured);

/// <summary>
/// The expected pattern, judged at the target length 4L on perplexity. The thresholds are fixed here, before any
/// measurement, and are not tuned to the results:
/// <list type="bullet">
/// <item>"far above": the unextended model's ppl@4L at least <see cref="FarAboveRatio"/> x its ppl@L (the PI paper's Table 1 shape);</item>
/// <item>LongLoRA's ppl@4L below PI-without-fine-tuning's;</item>
/// <item>"within 5 %": LongLoRA's ppl@4L at most <see cref="WithinRatio"/> x PI + full-attention LoRA's (LongLoRA's claim);</item>
/// <item>"clearly worse": extrapolation's ppl@4L more than <see cref="WithinRatio"/> x PI + full-attention LoRA's, the
/// method that differs from it only by PI (the same 5 % margin that counts as "equal" above).</item>
/// </list>
/// </summary>
public static class Expectations
{
    /// <summary>ppl@4L / ppl@L of the unextended model that counts as "far above".</summary>
    public const double FarAboveRatio = 1.25;

    /// <summary>The 5 % margin.</summary>
    public const double WithinRatio = 1.05;

    /// <summary>The methods the expectations are judged on; a run without one of them cannot be judged in full.</summary>
    public static IReadOnlyList<Method> Judged { get; } = [Method.None, Method.PiNoFinetune, Method.Extrapolation, Method.PiLora, Method.LongLora];

    /// <summary>Judges the results (the <see cref="Judged"/> methods are needed; an expectation missing one fails, its numbers marked "not run").</summary>
    /// <param name="results">Per-method results.</param>
    /// <param name="shortContext">L.</param>
    /// <param name="target">4L.</param>
    public static IReadOnlyList<Expectation> Check(IReadOnlyList<MethodResult> results, int shortContext, int target)
    {
        double? Ppl(Method m, int length) => results.FirstOrDefault(r => r.Method == m)?.Perplexity(length);
        string F(double? v) => v is double d ? d.ToString("F2", CultureInfo.InvariantCulture) : "not run";
        var list = new List<Expectation>();

        double? noneShort = Ppl(Method.None, shortContext), noneLong = Ppl(Method.None, target);
        list.Add(new Expectation(
            $"no extension: ppl@{target} far above ppl@{shortContext} (ratio >= {FarAboveRatio})",
            noneShort is double a && noneLong is double b && b >= FarAboveRatio * a,
            $"ppl@{shortContext} {F(noneShort)}, ppl@{target} {F(noneLong)}, ratio {(noneShort is double x && noneLong is double y ? (y / x).ToString("F3", CultureInfo.InvariantCulture) : "n/a")}"));

        double? longLora = Ppl(Method.LongLora, target), piZero = Ppl(Method.PiNoFinetune, target), piLora = Ppl(Method.PiLora, target);
        list.Add(new Expectation(
            $"LongLoRA ppl@{target} below PI without fine-tuning",
            longLora is double c && piZero is double d && c < d,
            $"LongLoRA {F(longLora)}, PI no fine-tuning {F(piZero)}"));
        list.Add(new Expectation(
            $"LongLoRA ppl@{target} within 5 % of PI + full-attention LoRA (ratio <= {WithinRatio})",
            longLora is double e && piLora is double f && e <= WithinRatio * f,
            $"LongLoRA {F(longLora)}, PI + LoRA {F(piLora)}, ratio {(longLora is double g && piLora is double h ? (g / h).ToString("F3", CultureInfo.InvariantCulture) : "n/a")}"));

        double? extrapolation = Ppl(Method.Extrapolation, target);
        list.Add(new Expectation(
            $"extrapolation (no PI) clearly worse than PI + LoRA at the same steps: ppl@{target} ratio > {WithinRatio}",
            extrapolation is double i && piLora is double j && i > WithinRatio * j,
            $"extrapolation {F(extrapolation)}, PI + LoRA {F(piLora)}, ratio {(extrapolation is double k && piLora is double m ? (k / m).ToString("F3", CultureInfo.InvariantCulture) : "n/a")}"));
        return list;
    }
}
