using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LongContext.Tests.IO;

/// <summary>
/// Seeded mutations of valid files for the fuzz tests: bit flips, truncations, changed header lengths, offsets,
/// dtypes and shapes, values of the wrong type, and huge numbers. Each mutation returns the new bytes and a short
/// description that a failing case prints (with its seed) so that it can be replayed.
/// </summary>
internal static class FileMutator
{
    private static readonly string[] HugeNumbers =
    [
        "18446744073709551616", "18446744073709551615", "9223372036854775807", "-9223372036854775808", "2147483648",
        "-1", "1e308", "-1e308", "1e-308", "4.9e-324", "99999999999999999999999999999999", "0.5", "1E400",
    ];

    private static readonly string[] Dtypes =
        ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F4", "F6_E2M3", "C64", "F33", "", "f32", "F32 "];

    /// <summary>JSON values of every kind, including huge and negative numbers.</summary>
    private static readonly string[] Values =
    [
        "null", "true", "false", "0", "-1", "1", "2", "2.5", "1e308", "-1e308", "2147483647", "2147483648", "9223372036854775807",
        "18446744073709551616", "\"\"", "\"x\"", "\"all-linear\"", "\"gaussian\"", "\"pissa\"", "\"none\"", "\"all\"", "\"lora_only\"",
        "\"LORA\"", "\"q_proj\"", "\"(\"", "[]", "[1]", "[null]", "[\"q_proj\"]", "[\"\"]", "[\"nonexistent\"]", "{}", "{\"a\":1}", "{\"q_proj\":4}",
        "\"llama\"", "\"silu\"", "[\"LlamaForCausalLM\"]", "[\"GPT2LMHeadModel\"]", "{\"rope_type\":\"yarn\",\"factor\":-3}", "{\"rope_type\":\"linear\",\"factor\":1e308}",
    ];

    /// <summary>Bytes-level mutations that apply to any file.</summary>
    public static (byte[] Bytes, string What) Bytes(byte[] file, Random rng, long hotRegion)
    {
        switch (rng.Next(3))
        {
            case 0:
            {
                byte[] b = (byte[])file.Clone();
                int flips = 1 + rng.Next(8);
                var at = new List<string>();
                for (int i = 0; i < flips && b.Length > 0; i++)
                {
                    long limit = rng.Next(4) == 0 ? b.Length : Math.Min(b.Length, Math.Max(1, hotRegion));
                    int pos = (int)rng.NextInt64(limit);
                    int bit = rng.Next(8);
                    b[pos] ^= (byte)(1 << bit);
                    at.Add($"{pos}.{bit}");
                }
                return (b, $"bit flips at {string.Join(", ", at)}");
            }
            case 1:
            {
                int keep = rng.Next(file.Length);
                return (file[..keep], $"truncated to {keep} of {file.Length} bytes");
            }
            default:
            {
                int pos = rng.Next(file.Length + 1);
                byte[] extra = new byte[1 + rng.Next(16)];
                rng.NextBytes(extra);
                return ([.. file[..pos], .. extra, .. file[pos..]], $"{extra.Length} random bytes inserted at {pos}");
            }
        }
    }

    /// <summary>A number in the text replaced by a huge, negative or fractional one.</summary>
    public static (string Text, string What) HugeNumber(string text, Random rng)
    {
        var numbers = Regex.Matches(text, @"-?\d+(\.\d+)?([eE][-+]?\d+)?");
        if (numbers.Count == 0) return (text, "no number to replace");
        Match m = numbers[rng.Next(numbers.Count)];
        string huge = HugeNumbers[rng.Next(HugeNumbers.Length)];
        return (text[..m.Index] + huge + text[(m.Index + m.Length)..], $"number '{m.Value}' at {m.Index} -> {huge}");
    }

    /// <summary>
    /// A field of a JSON object (at the top level or one level down) removed, retyped or added; half the time one of
    /// <paramref name="focus"/> (the fields that change the math) is retyped at the top level.
    /// </summary>
    public static (string Text, string What) JsonField(string text, Random rng, IReadOnlyList<string> focus)
    {
        JsonObject root = JsonNode.Parse(text)!.AsObject();
        JsonObject target = root;
        string where = "";
        var nested = root.Where(kv => kv.Value is JsonObject).Select(kv => kv.Key).ToList();
        if (nested.Count > 0 && rng.Next(3) == 0)
        {
            where = nested[rng.Next(nested.Count)];
            target = root[where]!.AsObject();
        }
        var keys = target.Select(kv => kv.Key).ToList();
        string value = Values[rng.Next(Values.Length)];
        if (focus.Count > 0 && rng.Next(2) == 0)
        {
            string f = focus[rng.Next(focus.Count)];
            root[f] = JsonNode.Parse(value);
            return (root.ToJsonString(), $"{f} = {value}");
        }
        int op = keys.Count == 0 ? 2 : rng.Next(5);
        if (op == 0)
        {
            string k = keys[rng.Next(keys.Count)];
            target.Remove(k);
            return (root.ToJsonString(), $"removed {where}.{k}");
        }
        if (op == 2)
        {
            string k = $"fuzz_{rng.Next(1000)}";
            target[k] = JsonNode.Parse(value);
            return (root.ToJsonString(), $"added {where}.{k} = {value}");
        }
        string key = keys[rng.Next(keys.Count)];
        target[key] = JsonNode.Parse(value);
        return (root.ToJsonString(), $"{where}.{key} = {value}");
    }

    /// <summary>One mutation of a safetensors file's header (offsets, dtypes, shapes, entries, metadata, its length).</summary>
    public static (byte[] Bytes, string What) SafetensorsHeader(byte[] file, Random rng)
    {
        var (header, data) = RawSafetensors.Split(file);
        JsonObject root = JsonNode.Parse(header)!.AsObject();
        var names = root.Where(kv => kv.Key != "__metadata__").Select(kv => kv.Key).ToList();
        string name = names[rng.Next(names.Count)];
        JsonObject entry = root[name]!.AsObject();
        string what;
        switch (rng.Next(9))
        {
            case 0:
            {
                var offsets = entry["data_offsets"]!.AsArray();
                int i = rng.Next(2);
                long v = (long)offsets[i]!;
                string[] choices = [$"{v + 1}", $"{v - 1}", $"{v + 8}", "0", "-1", $"{data.Length}", $"{data.Length + 1}", "9223372036854775807", "1e20", "18446744073709551616"];
                string c = choices[rng.Next(choices.Length)];
                offsets[i] = JsonNode.Parse(c);
                what = $"'{name}'.data_offsets[{i}] = {c}";
                break;
            }
            case 1:
            {
                var offsets = entry["data_offsets"]!.AsArray();
                var other = root[names[rng.Next(names.Count)]]!["data_offsets"]!.AsArray();
                offsets[0] = other[0]!.DeepClone();
                offsets[1] = other[1]!.DeepClone();
                what = $"'{name}'.data_offsets copied from another tensor";
                break;
            }
            case 2:
            {
                string d = Dtypes[rng.Next(Dtypes.Length)];
                entry["dtype"] = d;
                what = $"'{name}'.dtype = '{d}'";
                break;
            }
            case 3:
            {
                var shape = entry["shape"]!.AsArray();
                string[] dims = ["-1", "0", "1", "2147483648", "4611686018427387904", "9223372036854775807", "1.5", "\"3\"", "null"];
                string d = dims[rng.Next(dims.Length)];
                if (shape.Count > 0 && rng.Next(3) > 0) shape[rng.Next(shape.Count)] = JsonNode.Parse(d);
                else shape.Add(JsonNode.Parse(d));
                what = $"'{name}'.shape dimension -> {d}";
                break;
            }
            case 4:
            {
                var shape = entry["shape"]!.AsArray();
                if (shape.Count > 0) shape.RemoveAt(rng.Next(shape.Count));
                else shape.Add(2);
                what = $"'{name}'.shape lost or gained a dimension";
                break;
            }
            case 5:
            {
                string[] fields = ["dtype", "shape", "data_offsets"];
                string f = fields[rng.Next(3)];
                if (rng.Next(2) == 0) entry.Remove(f);
                else entry[f] = JsonNode.Parse(Values[rng.Next(Values.Length)]);
                what = $"'{name}'.{f} removed or retyped";
                break;
            }
            case 6:
            {
                root[name] = JsonNode.Parse(Values[rng.Next(Values.Length)]);
                what = $"entry '{name}' replaced by a value";
                break;
            }
            case 7:
            {
                root["__metadata__"] = JsonNode.Parse(Values[rng.Next(Values.Length)]);
                what = "__metadata__ replaced by a value";
                break;
            }
            default:
            {
                // The header length field alone, the JSON untouched.
                int n = BinaryPrimitives.ReadInt32LittleEndian(file);
                ulong[] lengths = [0, 1, (ulong)n - 1, (ulong)n + 1, (ulong)file.Length, (ulong)file.Length - 8, 100_000_001, ulong.MaxValue, (ulong)rng.NextInt64()];
                ulong length = lengths[rng.Next(lengths.Length)];
                byte[] b = (byte[])file.Clone();
                BinaryPrimitives.WriteUInt64LittleEndian(b, length);
                return (b, $"header length {n} -> {length}");
            }
        }
        string json = root.ToJsonString();
        if (rng.Next(4) == 0 && names.Count > 1)
        {
            // Duplicate a tensor name at the text level (a JSON object cannot hold it).
            string other = names.First(n => n != name);
            json = json.Replace($"\"{other}\":", $"\"{name}\":", StringComparison.Ordinal);
            what += $", and '{other}' renamed to '{name}'";
        }
        return (RawSafetensors.Build(json, data, pad: rng.Next(2) == 0), what);
    }

    /// <summary>The safetensors header text with a number replaced, the length field kept consistent.</summary>
    public static (byte[] Bytes, string What) SafetensorsHugeNumber(byte[] file, Random rng)
    {
        var (header, data) = RawSafetensors.Split(file);
        var (text, what) = HugeNumber(header, rng);
        return (RawSafetensors.Build(text, data), what);
    }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
