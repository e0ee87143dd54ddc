using TorchSharp;
using static TorchSharp.torch;

// Placeholder until the context-extension demo lands: proves the native stack loads.
using var x = randn(4, 4, generator: new Generator(0));
Console.WriteLine($"TorchSharp {torch.__version__} OK; sum of a 4x4 normal sample = {x.sum().item<float>():F4}");
