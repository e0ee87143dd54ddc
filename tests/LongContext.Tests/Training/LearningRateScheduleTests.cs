using LongContext.Tests.Support;
using LongContext.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.Tests.Training;

/// <summary>
/// The schedules against HF transformers' closed forms (optimization.py), evaluated by hand for the rows below:
/// constant_with_warmup <c>s/max(1,w)</c> then 1; linear <c>max(0,(T-s)/max(1,T-w))</c>; cosine
/// <c>max(0, 0.5(1+cos(pi*c*2*(s-w)/max(1,T-w))))</c>. Tolerance 1e-15 (double arithmetic only).
/// </summary>
[Trait(Category.Name, Category.Training)]
public sealed class LearningRateScheduleTests
{
    public static TheoryData<string, LearningRateSchedule, long, double> Rows() => new()
    {
        { "constant: first update of a warmup is lr 0 (HF LambdaLR)", LearningRateSchedule.ConstantWithWarmup(4), 0, 0.0 },
        { "constant: quarter of warmup", LearningRateSchedule.ConstantWithWarmup(4), 1, 0.25 },
        { "constant: three quarters", LearningRateSchedule.ConstantWithWarmup(4), 3, 0.75 },
        { "constant: warmup done", LearningRateSchedule.ConstantWithWarmup(4), 4, 1.0 },
        { "constant: long after", LearningRateSchedule.ConstantWithWarmup(4), 1_000_000, 1.0 },
        { "constant: no warmup", LearningRateSchedule.ConstantWithWarmup(0), 0, 1.0 },
        { "constant: LongLoRA warmup 20, step 5", LearningRateSchedule.ConstantWithWarmup(20, 1000), 5, 0.25 },
        { "linear: warmup half", LearningRateSchedule.Linear(2, 10), 1, 0.5 },
        { "linear: peak", LearningRateSchedule.Linear(2, 10), 2, 1.0 },
        { "linear: halfway down (10-6)/8", LearningRateSchedule.Linear(2, 10), 6, 0.5 },
        { "linear: 7/8 at step 3", LearningRateSchedule.Linear(2, 10), 3, 0.875 },
        { "linear: zero at the end", LearningRateSchedule.Linear(2, 10), 10, 0.0 },
        { "linear: clamped at zero after the end", LearningRateSchedule.Linear(2, 10), 14, 0.0 },
        { "linear: warmup equals total", LearningRateSchedule.Linear(5, 5), 5, 0.0 },
        { "cosine: warmup 1/4", LearningRateSchedule.Cosine(4, 12), 1, 0.25 },
        { "cosine: peak", LearningRateSchedule.Cosine(4, 12), 4, 1.0 },
        { "cosine: progress 1/4 = (1+cos(pi/4))/2", LearningRateSchedule.Cosine(4, 12), 6, 0.5 * (1 + Math.Sqrt(0.5)) },
        { "cosine: progress 1/2 = 1/2", LearningRateSchedule.Cosine(4, 12), 8, 0.5 },
        { "cosine: progress 3/4 = (1-cos(pi/4))/2", LearningRateSchedule.Cosine(4, 12), 10, 0.5 * (1 - Math.Sqrt(0.5)) },
        { "cosine: zero at the end", LearningRateSchedule.Cosine(4, 12), 12, 0.0 },
        { "cosine: 1 cycle, progress 1/2 is the trough", LearningRateSchedule.Cosine(0, 8, cycles: 1.0), 4, 0.0 },
        { "cosine: 1 cycle, back to the peak at the end", LearningRateSchedule.Cosine(0, 8, cycles: 1.0), 8, 1.0 },
        { "cosine: past the end of half a wave rises again, as HF", LearningRateSchedule.Cosine(0, 8), 12, 0.5 },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Factor_EqualsHfClosedForm(string name, LearningRateSchedule schedule, long step, double expected)
    {
        double actual = schedule.Factor(step);
        Assert.True(Math.Abs(actual - expected) <= 1e-15, $"{name}: factor {actual:R}, expected {expected:R}");
    }

    [Fact]
    public void Apply_SetsEveryGroupToItsInitialRateTimesTheFactor()
    {
        using var a = new TorchSharp.Modules.Parameter(torch.zeros(3));
        using var b = new TorchSharp.Modules.Parameter(torch.zeros(2));
        using var optimizer = torch.optim.AdamW(
            [new TorchSharp.Modules.AdamW.ParamGroup([a], lr: 1e-3), new TorchSharp.Modules.AdamW.ParamGroup([b], lr: 4e-2)]);
        var schedule = LearningRateSchedule.Linear(2, 10);

        double factor = schedule.Apply(optimizer, 6);
        double again = schedule.Apply(optimizer, 6);   // from the initial rate, not compounding

        Assert.Equal(0.5, factor);
        Assert.Equal(0.5, again);
        var groups = optimizer.ParamGroups.ToList();
        Assert.Equal(0.5e-3, groups[0].LearningRate, 15);
        Assert.Equal(2e-2, groups[1].LearningRate, 15);
        Assert.Equal(1e-3, groups[0].InitialLearningRate);
    }

    [Fact]
    public void NegativeWarmup_IsRejectedNamingIt()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.ConstantWithWarmup(-1));
        Assert.Equal("warmupSteps", e.ParamName);
        Assert.Contains("-1", e.Message);
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("cosine")]
    [InlineData("constant")]
    public void TotalStepsBelowWarmup_IsRejectedNamingBoth(string kind)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => kind switch
        {
            "linear" => LearningRateSchedule.Linear(10, 9),
            "cosine" => LearningRateSchedule.Cosine(10, 9),
            _ => LearningRateSchedule.ConstantWithWarmup(10, 9),
        });
        Assert.Equal("totalSteps", e.ParamName);
        Assert.Contains("warmupSteps (10)", e.Message);
        Assert.Contains("got 9", e.Message);
    }

    [Fact]
    public void NonPositiveCycles_AreRejected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(0, 10, cycles: 0));
        Assert.Equal("cycles", e.ParamName);
    }

    [Fact]
    public void NegativeStep_IsRejected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(2, 10).Factor(-3));
        Assert.Equal("step", e.ParamName);
    }
}
