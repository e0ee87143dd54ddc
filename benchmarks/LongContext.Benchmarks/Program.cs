using BenchmarkDotNet.Running;
using LongContext.Benchmarks.Infrastructure;

// dotnet run -c Release --project benchmarks/LongContext.Benchmarks -- <suite>|all [--device cpu|cuda] [--dtype ...] [--smoke] [BenchmarkDotNet options]
BenchOptions options;
try
{
    options = BenchOptions.Parse(args, Environment.GetEnvironmentVariable);
    BenchSettings.Apply(options);
}
catch (Exception e) when (e is ArgumentException or InvalidOperationException)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

IEnumerable<Suite> suites = options.Suites.Select(Suite.Get);
if (options.Smoke)
{
    return SmokeRunner.Run(suites, Console.Out) == 0 ? 0 : 1;
}

int exitCode = 0;
foreach (Suite suite in suites)
{
    if (suite.CudaOnly && !BenchSettings.IsCuda)
    {
        Console.Error.WriteLine($"Suite '{suite.Name}' runs on CUDA only (full mode); pass --device cuda, or --smoke for its tiny CPU check.");
        exitCode = 2;
        continue;
    }
    foreach (var summary in BenchmarkRunner.Run(suite.Types, BenchConfig.Create(suite), [.. options.BenchmarkDotNetArgs]))
    {
        if (summary.HasCriticalValidationErrors || summary.Reports.Any(r => !r.Success))
        {
            Console.Error.WriteLine($"Suite '{suite.Name}': {summary.Title} had failed or invalid benchmarks.");
            exitCode = 1;
        }
    }
}
return exitCode;
