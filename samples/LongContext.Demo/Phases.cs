using System.Diagnostics;
using Spectre.Console;

namespace LongContext.Demo;

/// <summary>
/// Spectre.Console progress bars for the long phases. When the console is not interactive (CI logs, redirected
/// output) a plain line is printed every tenth of the work instead.
/// </summary>
public static class Phases
{
    /// <summary>Runs <paramref name="body"/> under a progress bar of <paramref name="total"/> units.</summary>
    /// <typeparam name="T">Result type.</typeparam>
    /// <param name="title">What runs.</param>
    /// <param name="total">Units of work.</param>
    /// <param name="body">The work; it reports (units done, status text).</param>
    public static T Run<T>(string title, long total, Func<Action<long, string>, T> body)
    {
        total = Math.Max(1, total);
        var clock = Stopwatch.StartNew();
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            int lastTenth = -1;
            string lastStatus = "";
            T plain = body((done, status) =>
            {
                lastStatus = status;
                int tenth = (int)(10 * Math.Min(done, total) / total);
                if (tenth == lastTenth) return;
                lastTenth = tenth;
                Console.WriteLine($"  {title}: {done}/{total} {status} ({clock.Elapsed.TotalSeconds:F0}s)");
            });
            Console.WriteLine($"  {title}: done in {clock.Elapsed.TotalSeconds:F0}s {lastStatus}");
            return plain;
        }
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: total);
                result = body((done, status) =>
                {
                    task.Value = Math.Min(done, total);
                    task.Description = Markup.Escape($"{title} {status}");
                });
                task.Value = total;
            });
        return result;
    }
}
