// Consumes the packed LongContext package: one tensor operation through its public API.
using LongContext.IO;
using static TorchSharp.torch;

string path = Path.Combine(Path.GetTempPath(), $"consumer-{Environment.ProcessId}.safetensors");
using var x = arange(6, dtype: float32).reshape(2, 3);
SafetensorsFile.Save(path, new Dictionary<string, Tensor> { ["x"] = x });
var back = SafetensorsFile.Load(path);
File.Delete(path);
float sum = back["x"].sum().item<float>();
if (sum != 15f) { Console.Error.WriteLine($"consumer: expected 15, got {sum}"); return 1; }
Console.WriteLine($"consumer: LongContext package loaded and computed sum = {sum}");
return 0;
