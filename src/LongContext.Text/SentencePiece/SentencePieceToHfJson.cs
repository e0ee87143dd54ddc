using System.Text.Json;

namespace LongContext.Text.SentencePiece;

/// <summary>
/// Writes a SentencePiece BPE model as the <c>tokenizer.json</c> pipeline transformers' <c>LlamaConverter</c>
/// builds from it (the layout of Llama-2's <c>tokenizer.json</c>), so HF tokenizers' own BPE runs it:
/// normalizer Sequence[Prepend("▁"), Replace(" " → "▁")], no pre-tokenizer, BPE with <c>byte_fallback</c> and
/// <c>fuse_unk</c>, merges = every split of a piece into two pieces, pieces by descending score (stable, splits
/// ordered by their ids), decoder Sequence[Replace("▁" → " "), ByteFallback, Fuse, Strip(" ", 1, 0)].
/// <para>
/// Two differences from the converter, both so that the result is sentencepiece's, not transformers': no added
/// tokens and no post-processor (sentencepiece reads <c>&lt;s&gt;</c> in text as characters; BOS/EOS are added by
/// the caller), and merges only build pieces of type NORMAL from NORMAL pieces (sentencepiece never merges into
/// control, unknown or byte pieces).
/// </para>
/// Why not Microsoft.ML.Tokenizers' <c>LlamaTokenizer</c>: its SentencePiece BPE breaks ties between equal-score
/// pairs rightmost-first (<c>SentencePieceBpeModel.SymbolPair.CompareTo</c>), sentencepiece leftmost-first, so runs
/// of spaces split differently (measured in README.md).
/// </summary>
internal static class SentencePieceToHfJson
{
    private const string Metaspace = "\u2581";

    /// <summary>Checks that HF's BPE reproduces this model, else throws <see cref="NotSupportedException"/> naming the field.</summary>
    public static void CheckSupported(SentencePieceModel model, string path)
    {
        string? problem = model.ModelType switch
        {
            2 => null,
            1 => "model_type UNIGRAM",
            3 => "model_type WORD",
            4 => "model_type CHAR",
            _ => $"model_type {model.ModelType}",
        };
        if (problem is null && model.TreatWhitespaceAsSuffix) problem = "treat_whitespace_as_suffix=true";
        if (problem is null && model.RemoveExtraWhitespaces) problem = "remove_extra_whitespaces=true";
        if (problem is null && !model.EscapeWhitespaces) problem = "escape_whitespaces=false";
        if (problem is null && model.PrecompiledCharsmapLength > 0)
            problem = $"normalization rule '{model.NormalizerName}' (a precompiled character map)";
        if (problem is null && model.DenormalizerCharsmapLength > 0) problem = "a denormalization rule (denormalizer_spec.precompiled_charsmap)";
        if (problem is null)
        {
            foreach (var type in new[] { PieceType.UserDefined, PieceType.Unused })
            {
                int n = model.Pieces.Count(p => p.Type == type);
                if (n > 0) { problem = $"{n} piece(s) of type {type.ToString().ToUpperInvariant()}"; break; }
            }
        }
        if (problem is not null)
            throw new NotSupportedException(
                $"'{path}': {problem} is not supported; LongContext reads SentencePiece BPE models with identity normalization, " +
                "escaped whitespace and no extra-whitespace removal (Llama-2, Mistral). Use the folder's tokenizer.json if it has one.");
    }

    /// <summary>The <c>tokenizer.json</c> text for HF tokenizers.</summary>
    /// <param name="model">The model read.</param>
    /// <param name="path">The file it was read from, for the message of <see cref="InvalidDataException"/> (a piece that appears twice).</param>
    public static string ToJson(SentencePieceModel model, string path)
    {
        var pieces = model.Pieces;
        var ids = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        for (int i = 0; i < pieces.Count; i++)
            if (!ids.TryAdd(pieces[i].Text, i))
                throw new InvalidDataException($"'{path}': piece '{pieces[i].Text}' appears twice (ids {ids[pieces[i].Text]} and {i}); each piece of a SentencePiece model is unique.");
        string? unk = model.UnkId >= 0 && model.UnkId < pieces.Count ? pieces[model.UnkId].Text : null;

        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            w.WriteEndArray();
            WriteNormalizer(w, model);
            w.WriteNull("pre_tokenizer");
            w.WriteNull("post_processor");
            WriteDecoder(w, model);
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            if (unk is null) w.WriteNull("unk_token"); else w.WriteString("unk_token", unk);
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", true);
            w.WriteBoolean("byte_fallback", model.ByteFallback);
            w.WriteStartObject("vocab");
            for (int i = 0; i < pieces.Count; i++) w.WriteNumber(pieces[i].Text, i);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach ((string left, string right) in Merges(pieces, ids))
            {
                w.WriteStartArray();
                w.WriteStringValue(left);
                w.WriteStringValue(right);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// transformers' <c>SentencePieceExtractor</c>: for each piece (id order) its splits into two vocabulary pieces
    /// ordered by (left id, right id), then all of them stably ordered by the piece's score, highest first.
    /// </summary>
    internal static List<(string Left, string Right)> Merges(IReadOnlyList<Piece> pieces, Dictionary<string, int> ids)
    {
        var merges = new List<(string Left, string Right, float Score, int Order)>();
        for (int i = 0; i < pieces.Count; i++)
        {
            Piece p = pieces[i];
            if (p.Type != PieceType.Normal) continue;
            var local = new List<(int L, int R)>();
            for (int cut = 1; cut < p.Text.Length; cut++)
            {
                if (char.IsLowSurrogate(p.Text[cut])) continue;   // split between characters, not inside one
                if (ids.TryGetValue(p.Text[..cut], out int l) && ids.TryGetValue(p.Text[cut..], out int r)
                    && pieces[l].Type == PieceType.Normal && pieces[r].Type == PieceType.Normal)
                    local.Add((l, r));
            }
            local.Sort();
            foreach ((int l, int r) in local) merges.Add((pieces[l].Text, pieces[r].Text, p.Score, merges.Count));
        }
        merges.Sort((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Order.CompareTo(b.Order));
        return merges.Select(m => (m.Left, m.Right)).ToList();
    }

    private static void WriteNormalizer(Utf8JsonWriter w, SentencePieceModel model)
    {
        w.WriteStartObject("normalizer");
        w.WriteString("type", "Sequence");
        w.WriteStartArray("normalizers");
        if (model.AddDummyPrefix)
        {
            w.WriteStartObject();
            w.WriteString("type", "Prepend");
            w.WriteString("prepend", Metaspace);
            w.WriteEndObject();
        }
        WriteReplace(w, " ", Metaspace);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteDecoder(Utf8JsonWriter w, SentencePieceModel model)
    {
        w.WriteStartObject("decoder");
        w.WriteString("type", "Sequence");
        w.WriteStartArray("decoders");
        WriteReplace(w, Metaspace, " ");
        if (model.ByteFallback)
        {
            w.WriteStartObject();
            w.WriteString("type", "ByteFallback");
            w.WriteEndObject();
        }
        w.WriteStartObject();
        w.WriteString("type", "Fuse");
        w.WriteEndObject();
        if (model.AddDummyPrefix)
        {
            w.WriteStartObject();
            w.WriteString("type", "Strip");
            w.WriteString("content", " ");
            w.WriteNumber("start", 1);
            w.WriteNumber("stop", 0);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteReplace(Utf8JsonWriter w, string from, string to)
    {
        w.WriteStartObject();
        w.WriteString("type", "Replace");
        w.WriteStartObject("pattern");
        w.WriteString("String", from);
        w.WriteEndObject();
        w.WriteString("content", to);
        w.WriteEndObject();
    }
}
