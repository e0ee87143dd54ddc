using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Results;

/// <summary>
/// Runs named checks of one step on one device: each body runs in its own dispose scope, its comparisons become
/// rows, and an exception becomes one Error row instead of ending the run.
/// </summary>
internal sealed class CheckRunner(string step, Device device, ResultLog log)
{
    /// <summary>The device the checks run on.</summary>
    public Device Device { get; } = device;

    /// <summary>The log rows go to.</summary>
    public ResultLog Log { get; } = log;

    /// <summary>Runs one check.</summary>
    /// <param name="group">Report section (rope, attention, lora, ...).</param>
    /// <param name="name">What is checked (a case name).</param>
    /// <param name="dtype">Compute dtype of the case (as a name), or "-".</param>
    /// <param name="body">Compares through the recorder it is given.</param>
    public void Run(string group, string name, string dtype, Action<Recorder> body)
    {
        var clock = Stopwatch.StartNew();
        var recorder = new Recorder(this, group, name, dtype, clock);
        try
        {
            using var scope = NewDisposeScope();
            body(recorder);
        }
        catch (Exception e)
        {
            Exception inner = e is System.Reflection.TargetInvocationException { InnerException: { } ie } ? ie : e;
            Log.Add(new CheckResult(step, group, name, DeviceName, dtype, "", null, null, CheckStatus.Error,
                $"{inner.GetType().Name}: {inner.Message} ({FirstFrame(inner)})", clock.Elapsed.TotalSeconds));
        }
    }

    /// <summary>The device as the report names it.</summary>
    public string DeviceName => Device.type == DeviceType.CUDA ? "cuda" : "cpu";

    internal void Add(string group, string name, string dtype, string metric, double? value, double? tolerance, CheckStatus status, string detail, Stopwatch clock)
        => Log.Add(new CheckResult(step, group, name, DeviceName, dtype, metric, value, tolerance, status, detail, clock.Elapsed.TotalSeconds));

    private static string FirstFrame(Exception e)
        => e.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "?";
}

/// <summary>Turns comparisons of one check into rows.</summary>
internal sealed class Recorder(CheckRunner runner, string group, string name, string dtype, Stopwatch clock)
{
    /// <summary>The device of the run.</summary>
    public Device Device => runner.Device;

    /// <summary>Records max |actual - reference| (float64, CPU) against an absolute tolerance.</summary>
    /// <returns>The measured error.</returns>
    public double Close(string what, Tensor actual, Tensor reference, double tolerance, string detail = "")
    {
        double err = Errors.MaxAbsDiff(actual, reference);
        bool ok = err <= tolerance && !double.IsNaN(err);
        runner.Add(group, Label(what), dtype, "max_abs", err, tolerance, ok ? CheckStatus.Pass : CheckStatus.Fail, detail, clock);
        return err;
    }

    /// <summary>Records the number of elements that differ (exact comparison; tolerance 0).</summary>
    public void Exact(string what, Tensor actual, Tensor expected, string detail = "")
    {
        using var scope = NewDisposeScope();
        if (!actual.shape.SequenceEqual(expected.shape))
        {
            runner.Add(group, Label(what), dtype, "mismatches", null, 0, CheckStatus.Fail,
                $"shape [{string.Join(", ", actual.shape)}] vs expected [{string.Join(", ", expected.shape)}]", clock);
            return;
        }
        long differing = actual.detach().cpu().ne(expected.detach().cpu().to(actual.dtype)).sum().item<long>();
        runner.Add(group, Label(what), dtype, "mismatches", differing, 0, differing == 0 ? CheckStatus.Pass : CheckStatus.Fail,
            detail.Length > 0 ? detail : $"of {actual.numel()}", clock);
    }

    /// <summary>Records a boolean property (pass when true).</summary>
    public void True(string what, bool condition, string detail)
        => runner.Add(group, Label(what), dtype, "", null, null, condition ? CheckStatus.Pass : CheckStatus.Fail, detail, clock);

    /// <summary>Records that part of the check does not apply here.</summary>
    public void Skip(string what, string reason)
        => runner.Add(group, Label(what), dtype, "", null, null, CheckStatus.Skip, reason, clock);

    private string Label(string what) => what.Length == 0 ? name : $"{name}: {what}";
}
