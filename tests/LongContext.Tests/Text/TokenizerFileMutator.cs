using System.Text;
using System.Text.Json.Nodes;

namespace LongContext.Tests.Text;

/// <summary>
/// Seeded mutations of tokenizer files for <see cref="TokenizerFileFuzzTests"/> that know the files' structure:
/// SentencePiece's protobuf (<c>tokenizer.model</c>: varint lengths, tags, piece types and scores, trainer and
/// normalizer fields) and HF's <c>tokenizer.json</c> (vocabulary ids, merges, added tokens, pipeline component
/// types). Each returns the new content and a short description that a failing case prints.
/// </summary>
internal static class TokenizerFileMutator
{
    /// <summary>One field of a protobuf message: where its tag starts, its number and wire type, and its payload.</summary>
    private readonly record struct WireField(int Start, int PayloadStart, int End, int Number, int Wire, int LengthStart);

    /// <summary>Varint values that hit the edges of int, uint and ulong (the 10-byte -1 as protobuf writes a negative int32).</summary>
    private static readonly ulong[] HugeVarints =
        [0, 1, 127, 128, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_0002, long.MaxValue, ulong.MaxValue, ulong.MaxValue - 1, 1_000_000, 65_536];

    private static readonly int[] TrainerIdFields = [40, 41, 42, 43];

    /// <summary>The top-level fields of a protobuf message (stops at the first malformed one).</summary>
    private static List<WireField> Fields(ReadOnlySpan<byte> data)
    {
        var list = new List<WireField>();
        int pos = 0;
        while (pos < data.Length)
        {
            int start = pos;
            if (!TryVarint(data, ref pos, out ulong tag)) break;
            int wire = (int)(tag & 7), number = (int)(tag >> 3);
            int lengthStart = pos, payload = pos;
            switch (wire)
            {
                case 0: if (!TryVarint(data, ref pos, out _)) return list; payload = lengthStart; break;
                case 1: pos += 8; break;
                case 5: pos += 4; break;
                case 2:
                    if (!TryVarint(data, ref pos, out ulong n) || n > (ulong)(data.Length - pos)) return list;
                    payload = pos;
                    pos += (int)n;
                    break;
                default: return list;
            }
            if (pos > data.Length) break;
            list.Add(new WireField(start, payload, pos, number, wire, lengthStart));
        }
        return list;
    }

    private static bool TryVarint(ReadOnlySpan<byte> data, ref int pos, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && pos < data.Length; shift += 7)
        {
            byte b = data[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }

    private static byte[] Varint(ulong v)
    {
        var b = new List<byte>();
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
        return [.. b];
    }

    private static byte[] Tag(int number, int wire) => Varint(((ulong)(uint)number << 3) | (uint)wire);

    private static byte[] LengthDelimited(int number, byte[] payload) => [.. Tag(number, 2), .. Varint((ulong)payload.Length), .. payload];

    private static byte[] VarintField(int number, ulong value) => [.. Tag(number, 0), .. Varint(value)];

    /// <summary>The message with <paramref name="field"/>'s payload replaced by <paramref name="payload"/> (the length rewritten).</summary>
    private static byte[] ReplacePayload(byte[] message, WireField field, byte[] payload)
        => [.. message[..field.Start], .. LengthDelimited(field.Number, payload), .. message[field.End..]];

    /// <summary>
    /// One mutation of a SentencePiece model that knows the protobuf layout: a length varint made huge or off by
    /// one, a tag's field number or wire type changed, a piece's type, score or text changed, a trainer or
    /// normalizer field set to an edge value (appended: protobuf's last value wins), a whole field dropped.
    /// </summary>
    public static (byte[] Bytes, string What) SentencePiece(byte[] model, Random rng)
    {
        var top = Fields(model);
        var pieces = top.Where(f => f is { Number: 1, Wire: 2 }).ToList();
        var trainer = top.FirstOrDefault(f => f is { Number: 2, Wire: 2 });
        var normalizer = top.FirstOrDefault(f => f is { Number: 3, Wire: 2 });
        switch (rng.Next(9))
        {
            case 0:
            {
                // A length varint (of a piece, the trainer or the normalizer spec) replaced, the payload kept.
                var f = rng.Next(3) == 0 && trainer.End > 0 ? trainer : pieces[rng.Next(pieces.Count)];
                ulong[] choices = [.. HugeVarints, (ulong)(f.End - f.PayloadStart) + 1, (ulong)(f.End - f.PayloadStart) - 1, (ulong)(model.Length - f.PayloadStart)];
                ulong length = choices[rng.Next(choices.Length)];
                return ([.. model[..f.LengthStart], .. Varint(length), .. model[f.PayloadStart..]],
                    $"length of field {f.Number} at byte {f.Start} ({f.End - f.PayloadStart}) -> {length}");
            }
            case 1:
            {
                // A tag rewritten: top level or inside a piece / the trainer spec.
                int number = rng.Next(4) switch { 0 => 0, 1 => rng.Next(1, 5), 2 => rng.Next(1, 60), _ => (int)rng.NextInt64(1, 1L << 29) };
                int wire = rng.Next(8);
                if (rng.Next(2) == 0)
                {
                    var f = top[rng.Next(top.Count)];
                    return ([.. model[..f.Start], .. Tag(number, wire), .. model[f.LengthStart..]], $"top-level tag at byte {f.Start} ({f.Number}/{f.Wire}) -> {number}/{wire}");
                }
                var outer = rng.Next(3) == 0 && trainer.End > 0 ? trainer : pieces[rng.Next(pieces.Count)];
                byte[] payload = model[outer.PayloadStart..outer.End];
                var inner = Fields(payload);
                if (inner.Count == 0) return (model, "no inner field to retag");
                var g = inner[rng.Next(inner.Count)];
                byte[] changed = [.. payload[..g.Start], .. Tag(number, wire), .. payload[g.LengthStart..]];
                return (ReplacePayload(model, outer, changed), $"tag inside field {outer.Number} at byte {outer.Start} ({g.Number}/{g.Wire}) -> {number}/{wire}");
            }
            case 2:
            {
                // A piece's type: each enum value, 0, one past, and values that wrap an int.
                var f = pieces[rng.Next(pieces.Count)];
                ulong[] types = [0, 1, 2, 3, 4, 5, 6, 7, 0x1_0000_0001, 0x1_0000_0003, ulong.MaxValue, 0x8000_0001];
                ulong t = types[rng.Next(types.Length)];
                return (ReplacePayload(model, f, [.. model[f.PayloadStart..f.End], .. VarintField(3, t)]), $"piece at byte {f.Start}: type {t}");
            }
            case 3:
            {
                // A piece's score: NaN, infinities, extremes (fixed32), or the score field sent as another wire type.
                var f = pieces[rng.Next(pieces.Count)];
                float[] scores = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, float.MinValue, float.Epsilon, 0, -0f, 1e30f];
                float s = scores[rng.Next(scores.Length)];
                byte[] field = rng.Next(4) == 0 ? VarintField(2, 5) : [.. Tag(2, 5), .. BitConverter.GetBytes(s)];
                return (ReplacePayload(model, f, [.. model[f.PayloadStart..f.End], .. field]), $"piece at byte {f.Start}: score {s} (or as a varint)");
            }
            case 4:
            {
                // A piece's text: empty, another piece's text (a duplicate), invalid UTF-8, a lone surrogate's bytes, a long run.
                var f = pieces[rng.Next(pieces.Count)];
                var other = pieces[rng.Next(pieces.Count)];
                byte[] otherText = Fields(model.AsSpan(other.PayloadStart, other.End - other.PayloadStart)).Where(g => g is { Number: 1, Wire: 2 })
                    .Select(g => model[(other.PayloadStart + g.PayloadStart)..(other.PayloadStart + g.End)]).FirstOrDefault() ?? [];
                byte[][] texts = [[], otherText, [0xFF, 0xFE], [0xED, 0xA0, 0x80], [0xC3], Encoding.UTF8.GetBytes(new string('a', 300)), [0], Encoding.UTF8.GetBytes("<0x100>"), Encoding.UTF8.GetBytes("<0xZZ>")];
                int which = rng.Next(texts.Length);
                return (ReplacePayload(model, f, [.. model[f.PayloadStart..f.End], .. LengthDelimited(1, texts[which])]),
                    $"piece at byte {f.Start}: text #{which} ({Convert.ToHexString(texts[which].Take(12).ToArray())})");
            }
            case 5:
            {
                // A trainer spec field at an edge: unk/bos/eos/pad ids, model type, byte fallback, whitespace as suffix.
                if (trainer.End == 0) return (model, "no trainer spec");
                int[] fields = [.. TrainerIdFields, .. TrainerIdFields, 3, 35, 24, 40];
                int number = fields[rng.Next(fields.Length)];
                ulong v = HugeVarints[rng.Next(HugeVarints.Length)];
                if (number == 3 && rng.Next(2) == 0) v = (ulong)rng.Next(6);
                return (ReplacePayload(model, trainer, [.. model[trainer.PayloadStart..trainer.End], .. VarintField(number, v)]), $"trainer_spec field {number} = {v}");
            }
            case 6:
            {
                // A normalizer spec field: the flags, a name, a precompiled character map.
                byte[] payload = normalizer.End > 0 ? model[normalizer.PayloadStart..normalizer.End] : [];
                byte[] field;
                string what;
                switch (rng.Next(4))
                {
                    case 0: { int n = rng.Next(3, 6); ulong v = HugeVarints[rng.Next(HugeVarints.Length)]; field = VarintField(n, v); what = $"normalizer_spec field {n} = {v}"; break; }
                    case 1: field = LengthDelimited(1, Encoding.UTF8.GetBytes(rng.Next(2) == 0 ? "nmt_nfkc" : "")); what = "normalizer_spec name"; break;
                    case 2: field = LengthDelimited(2, [1, 2, 3]); what = "normalizer_spec precompiled_charsmap"; break;
                    default: field = [.. Tag(rng.Next(1, 6), rng.Next(8))]; what = "normalizer_spec truncated field"; break;
                }
                if (normalizer.End == 0) return ([.. model, .. LengthDelimited(3, field)], what + " (new spec)");
                return (ReplacePayload(model, normalizer, [.. payload, .. field]), what);
            }
            case 7:
            {
                // Fields dropped: the trainer spec, the normalizer spec, every piece past some point, or one piece.
                switch (rng.Next(4))
                {
                    case 0 when trainer.End > 0: return ([.. model[..trainer.Start], .. model[trainer.End..]], "trainer_spec removed");
                    case 1 when normalizer.End > 0: return ([.. model[..normalizer.Start], .. model[normalizer.End..]], "normalizer_spec removed");
                    case 2:
                    {
                        int keep = rng.Next(pieces.Count);
                        var cut = pieces[keep];
                        return ([.. model[..cut.Start], .. model[pieces[^1].End..]], $"pieces from {keep} on removed");
                    }
                    default:
                    {
                        int k = rng.Next(pieces.Count);
                        return ([.. model[..pieces[k].Start], .. model[pieces[k].End..]], $"piece {k} removed");
                    }
                }
            }
            default:
            {
                // An unknown field with a huge or truncated length appended at the top level.
                int number = rng.Next(4, 200);
                ulong length = HugeVarints[rng.Next(HugeVarints.Length)];
                return ([.. model, .. Tag(number, 2), .. Varint(length), 1, 2, 3], $"top-level field {number} with length {length} appended");
            }
        }
    }

    /// <summary>Pipeline component types HF tokenizers knows (and a few it does not), for the <c>type</c> fields.</summary>
    private static readonly string[] ComponentTypes =
    [
        "Sequence", "ByteLevel", "Metaspace", "Split", "Whitespace", "WhitespaceSplit", "BertPreTokenizer", "Punctuation", "Digits",
        "UnicodeScripts", "CharDelimiterSplit", "FixedLength", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents", "Prepend",
        "Replace", "Precompiled", "BertNormalizer", "ByteFallback", "Fuse", "WordPiece", "BPEDecoder", "CTC", "TemplateProcessing",
        "RobertaProcessing", "BertProcessing", "WordLevel", "Unigram", "BPE", "Nonsense", "", "bytelevel",
    ];

    private static readonly string[] Values =
    [
        "null", "true", "false", "0", "-1", "1", "2.5", "1e308", "2147483647", "2147483648", "4294967295", "4294967296",
        "18446744073709551616", "\"\"", "\"x\"", "\"(\"", "\"[\"", "\"\\\\\"", "\"\\u0000\"", "[]", "[1]", "[null]", "[\"a\",\"b\"]", "{}", "{\"type\":\"Sequence\"}",
        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\",\"invert\":false}",
        "{\"type\":\"Metaspace\",\"replacement\":\"\",\"prepend_scheme\":\"always\",\"split\":true}",
        "{\"type\":\"Strip\",\"content\":\" \",\"start\":99999999999,\"stop\":-1}",
        "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":2}", "{\"type\":\"Strip\",\"content\":\"\u2581\",\"start\":0,\"stop\":1}",
        "{\"type\":\"FixedLength\",\"length\":0}", "{\"type\":\"Prepend\",\"prepend\":\"\"}", "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\"},\"content\":\"x\"}",
        "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"a*\"},\"content\":\"\"}", "[\"\"]", "[\"x\"]", "[true, false]",
        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a*\"},\"behavior\":\"Isolated\",\"invert\":false}", "{\"type\":\"Split\",\"pattern\":{\"String\":\"\"},\"behavior\":\"Removed\",\"invert\":true}", "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AAAA\"}",
        "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"B\",\"type_id\":0}}],\"pair\":[\"$A\",\"$B\"],\"special_tokens\":{}}",
    ];

    /// <summary>
    /// One mutation of a <c>tokenizer.json</c> that knows its layout: a vocabulary entry's id (huge, negative, a
    /// duplicate, retyped) or the entry removed or added, a merge changed (tokens not in the vocabulary, wrong
    /// shape), an added token's id or content, a pipeline component's <c>type</c> or a field of it, the model's
    /// type and options.
    /// </summary>
    public static (string Text, string What) TokenizerJson(string text, Random rng)
    {
        JsonObject root = JsonNode.Parse(text)!.AsObject();
        if (root["model"] is not JsonObject model || model["vocab"] is not JsonObject vocab || vocab.Count == 0)
            return (text, "no mutation (model.vocab already replaced)");
        var tokens = vocab.Select(kv => kv.Key).ToList();
        string what;
        switch (rng.Next(8))
        {
            case 0:
            {
                string t = tokens[rng.Next(tokens.Count)];
                string[] ids = ["-1", "2147483647", "2147483646", "2147483648", "1e9", "100000000", "1.5", "\"3\"", "null", "[]", $"{tokens.Count}", $"{tokens.Count + 5000}", "0", $"{rng.Next(tokens.Count)}"];
                string id = ids[rng.Next(ids.Length)];
                vocab[t] = JsonNode.Parse(id);
                what = $"model.vocab[\"{t}\"] = {id}";
                break;
            }
            case 1:
            {
                if (rng.Next(2) == 0)
                {
                    string t = tokens[rng.Next(tokens.Count)];
                    vocab.Remove(t);
                    what = $"model.vocab[\"{t}\"] removed";
                }
                else
                {
                    string t = $"fuzz{rng.Next(100)}";
                    string[] ids = ["0", $"{tokens.Count}", $"{tokens.Count + 1}", $"{tokens.Count * 3}", "2147483647", "65536"];
                    string id = ids[rng.Next(ids.Length)];
                    vocab[t] = JsonNode.Parse(id);
                    what = $"model.vocab[\"{t}\"] = {id} added";
                }
                break;
            }
            case 2:
            {
                if (model["merges"] is not JsonArray merges || merges.Count == 0) { what = "no merges"; break; }
                int i = rng.Next(merges.Count);
                string a = tokens[rng.Next(tokens.Count)];
                string[] forms = ["[\"zz_not_in_vocab\",\"a\"]", "\"onlyone\"", "\"a b c\"", "[\"a\"]", "[\"a\",\"b\",\"c\"]", "5", "[]", "null", "\"\"", "\" \"",
                    $"[{System.Text.Json.JsonSerializer.Serialize(a)},{System.Text.Json.JsonSerializer.Serialize(a)}]", "[1,2]", "{}"];
                string form = forms[rng.Next(forms.Length)];
                if (rng.Next(5) == 0) { model["merges"] = JsonNode.Parse(form); what = $"model.merges = {form}"; }
                else { merges[i] = JsonNode.Parse(form); what = $"model.merges[{i}] = {form}"; }
                break;
            }
            case 3:
            {
                if (root["added_tokens"] is not JsonArray added || added.Count == 0) { what = "no added tokens"; break; }
                int i = rng.Next(added.Count);
                var entry = added[i]!.AsObject();
                string[] fields = ["id", "id", "id", "content", "special", "normalized", "lstrip", "single_word"];
                string field = fields[rng.Next(fields.Length)];
                string[] values = field == "id"
                    ? ["-1", "2147483647", "2147483648", "1e9", "0", "5", $"{tokens.Count}", $"{tokens.Count + 1}", $"{tokens.Count + 100}", "\"1\"", "null", "1.5"]
                    : field == "content" ? ["\"\"", "\"a\"", "\"<s>\"", "\"</s>\"", "\"zz_new\"", "null", "3", "\"\\u0000\""] : ["true", "false", "null", "1", "\"x\""];
                string value = values[rng.Next(values.Length)];
                if (rng.Next(6) == 0) { entry.Remove(field); what = $"added_tokens[{i}].{field} removed"; }
                else { entry[field] = JsonNode.Parse(value); what = $"added_tokens[{i}].{field} = {value}"; }
                break;
            }
            case 4:
            {
                string[] parts = ["pre_tokenizer", "decoder", "normalizer", "post_processor"];
                string part = parts[rng.Next(parts.Length)];
                string type = ComponentTypes[rng.Next(ComponentTypes.Length)];
                if (root[part] is JsonObject o && rng.Next(2) == 0)
                {
                    // Keep the other fields: a known type with the wrong fields.
                    o["type"] = type;
                    what = $"{part}.type = '{type}' (fields kept)";
                }
                else
                {
                    root[part] = new JsonObject { ["type"] = type };
                    what = $"{part} = {{type: '{type}'}}";
                }
                break;
            }
            case 5:
            {
                // A field inside a pipeline component (or one of a Sequence's members) set to an odd value.
                string[] parts = ["pre_tokenizer", "decoder", "normalizer", "post_processor"];
                string part = parts[rng.Next(parts.Length)];
                if (root[part] is not JsonObject o) { string v = Values[rng.Next(Values.Length)]; root[part] = JsonNode.Parse(v); what = $"{part} = {v}"; break; }
                JsonObject target = o;
                string where = part;
                foreach (var kv in o)
                    if (kv.Value is JsonArray arr && arr.Count > 0 && arr[0] is JsonObject && rng.Next(2) == 0)
                    {
                        int k = rng.Next(arr.Count);
                        if (arr[k] is JsonObject member) { target = member; where = $"{part}.{kv.Key}[{k}]"; }
                        break;
                    }
                var keys = target.Select(kv => kv.Key).ToList();
                string key = keys.Count > 0 && rng.Next(4) > 0 ? keys[rng.Next(keys.Count)] : "fuzz";
                string value = Values[rng.Next(Values.Length)];
                target[key] = JsonNode.Parse(value);
                what = $"{where}.{key} = {value}";
                break;
            }
            case 6:
            {
                string[] fields = ["type", "dropout", "unk_token", "byte_fallback", "fuse_unk", "ignore_merges", "continuing_subword_prefix", "end_of_word_suffix", "vocab", "merges"];
                string field = fields[rng.Next(fields.Length)];
                string[] values = field == "type" ? ["\"BPE\"", "\"WordPiece\"", "\"Unigram\"", "\"WordLevel\"", "\"bpe\"", "null", "1"]
                    : field == "dropout" ? ["0", "0.5", "1", "1.5", "-0.1", "1e308", "\"x\""]
                    : field == "unk_token" ? ["\"<unk>\"", "\"zz_missing\"", "\"\"", "1", "null"]
                    : field == "continuing_subword_prefix" ? ["\"##\"", "\"\"", "\"\u00e9\"", "\"a very long prefix\"", "null", "1"]
                    : Values;
                string value = values[rng.Next(values.Length)];
                if (rng.Next(6) == 0) { model.Remove(field); what = $"model.{field} removed"; }
                else { model[field] = JsonNode.Parse(value); what = $"model.{field} = {value}"; }
                break;
            }
            default:
            {
                // Two vocabulary entries given the same id.
                string a = tokens[rng.Next(tokens.Count)], b = tokens[rng.Next(tokens.Count)];
                vocab[a] = vocab[b]!.DeepClone();
                what = $"model.vocab[\"{a}\"] = id of \"{b}\"";
                break;
            }
        }
        return (root.ToJsonString(), what);
    }

    /// <summary>Values for the special-id fields of <c>generation_config.json</c> / <c>config.json</c>.</summary>
    public static readonly string[] IdValues =
    [
        "0", "1", "2", "3", "-1", "-2", "2147483647", "2147483648", "-2147483649", "1e308", "1.5", "1.0", "\"1\"", "null", "true", "[]", "[1]", "[1,2]",
        "[-1]", "[-1,2]", "[2147483648]", "[\"2\"]", "[[1]]", "[null]", "{}", "999", "1999", "2000", "2001", "2002", "[2001,2000]",
    ];
}
