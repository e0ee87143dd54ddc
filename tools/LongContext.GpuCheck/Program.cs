using LongContext.GpuCheck;
using LongContext.GpuCheck.Interop;
using LongContext.GpuCheck.Parity;
using LongContext.GpuCheck.Results;
using TorchSharp;
using static TorchSharp.torch;

// LongContext.GpuCheck parity|interop-export|interop-import [options]   (scripts/gpu-check.sh runs it; see --help)
if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
{
    Console.WriteLine(CheckOptions.Usage);
    return args.Length == 0 ? 2 : 0;
}

CheckOptions options;
string fixtures;
try
{
    options = CheckOptions.Parse(args, Environment.GetEnvironmentVariable);
    fixtures = FixtureRoot.Locate(options.Fixtures);
}
catch (Exception e) when (e is ArgumentException or DirectoryNotFoundException)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(CheckOptions.Usage);
    return 2;
}

Device device = CPU;
if (options.Device == "cuda")
{
    torch.InitializeDeviceType(DeviceType.CUDA);
    if (!torch.cuda.is_available())
    {
        Console.Error.WriteLine("--device cuda: torch.cuda.is_available() is false after InitializeDeviceType(CUDA); " +
                                "run with LD_LIBRARY_PATH at a CUDA libtorch (scripts/gpu-check.sh does).");
        return 2;
    }
    device = CUDA;
}

using var log = new ResultLog(options.Results, Console.Out);
Console.WriteLine($"LongContext.GpuCheck {options.Command} on {options.Device} (fixtures: {fixtures}{(options.Quick ? ", quick" : "")})");
var clock = System.Diagnostics.Stopwatch.StartNew();
switch (options.Command)
{
    case "parity":
        ParitySuite.Run(new ParityContext(new CheckRunner("parity", device, log), options.Dtypes, fixtures, options.Quick), options.Only);
        break;
    case "interop-export":
        InteropExport.Run(new CheckRunner("interop", device, log), fixtures, options.Folder!);
        break;
    default:
        InteropImport.Run(new CheckRunner("interop", device, log), fixtures, options.Folder!);
        break;
}
Console.WriteLine($"{log.Summary()} in {clock.Elapsed.TotalSeconds:F1} s");
return log.Failures == 0 ? 0 : 1;
