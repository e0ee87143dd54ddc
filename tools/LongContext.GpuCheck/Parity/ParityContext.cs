using LongContext.GpuCheck.Results;
using static TorchSharp.torch;

namespace LongContext.GpuCheck.Parity;

/// <summary>What every parity group gets: the runner (device, log), the dtypes, the fixture root and the size mode.</summary>
internal sealed record ParityContext(CheckRunner Runner, IReadOnlyList<ScalarType> Dtypes, string Fixtures, bool Quick)
{
    /// <summary>The device under test.</summary>
    public Device Device => Runner.Device;

    /// <summary>A fixture sub-folder.</summary>
    public string Folder(string name) => Path.Combine(Fixtures, name);
}
