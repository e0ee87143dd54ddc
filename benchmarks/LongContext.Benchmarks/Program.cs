using BenchmarkDotNet.Running;
using LongContext.Benchmarks.Infrastructure;
using LongContext.Benchmarks.Memory;

// dotnet run -c Release --project benchmarks/LongContext.Benchmarks -- <suite>|all [--device cpu|cuda] [--dtype ...] [--smoke] [BenchmarkDotNet options]
//                                                                  | soak [...] | checkpoint-memory write|load <folder> [...]
if (args.Length > 0 && args[0] is "soak" or "checkpoint-memory")
{
    try
    {
        return args[0] == "soak"
            ? (SoakRunner.Run(SoakOptions.Parse(args[1..]), Console.Out) == 0 ? 0 : 1)
            : CheckpointMemory.Run(args[1..], Console.Out);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine(e.Message);
        Console.Error.WriteLine(SoakOptions.Usage);
        Console.Error.WriteLine(CheckpointMemory.Usage);
        return 2;
    }
}

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
