using LongContext.Text.HfFiles;
using LongContext.Text.SentencePiece;

namespace LongContext.Text.Tokenization;

/// <summary>
/// A tokenizer loaded from a Hugging Face checkpoint folder, run by HF tokenizers' own Rust code (through
/// Tokenizers.DotNet):
/// <list type="bullet">
/// <item><c>tokenizer.json</c> (BPE models: byte-level as Llama-3 and Qwen write it, Metaspace with byte fallback as
/// HF writes Llama-2's) runs as written, with HF's semantics (added tokens such as <c>&lt;s&gt;</c> written in the
/// text are matched as tokens).</item>
/// <item><c>tokenizer.model</c> (SentencePiece BPE with byte fallback: Llama-2, Mistral) is converted as transformers'
/// <c>LlamaConverter</c> converts it, with sentencepiece's semantics: <c>&lt;s&gt;</c> in text stays text, control
/// tokens decode to nothing, BOS/EOS follow <c>add_bos_token</c> / <c>add_eos_token</c> (default BOS only). Decoding
/// is sentencepiece's own (a C# port of its rules: broken UTF-8 in byte pieces, the unknown piece's <c>" ⁇ "</c>,
/// the first space), since HF's <c>ByteFallback</c> decoder differs from it on broken UTF-8.</item>
/// </list>
/// Special tokens come from <c>tokenizer_config.json</c> (strings or AddedToken objects), else
/// <c>generation_config.json</c>, else <c>config.json</c>, else the files themselves; the ids that end generation
/// from <c>generation_config.json</c>'s <c>eos_token_id</c>. <see cref="Decode"/> applies
/// <c>clean_up_tokenization_spaces</c> where transformers does (<see cref="CleanUpTokenizationSpaces"/>). Accepted
/// settings that LongContext does not apply are listed in <see cref="Warnings"/>. Holds native memory: dispose it.
/// </summary>
public sealed class HfTokenizer : ITextTokenizer, IDisposable
{
    /// <summary>File names read from a checkpoint folder.</summary>
    public const string TokenizerJsonName = "tokenizer.json", SentencePieceModelName = "tokenizer.model",
        TokenizerConfigName = "tokenizer_config.json", GenerationConfigName = "generation_config.json", ConfigName = "config.json";

    private readonly NativeHfTokenizer _withSpecial;
    private readonly NativeHfTokenizer? _withoutSpecial;   // tokenizer.json only
    private readonly string?[] _tokens;
    private readonly HashSet<int> _special;
    private readonly SentencePieceDecoder? _spmDecoder;    // tokenizer.model only: sentencepiece's own decoding
    private readonly int[] _prefix, _suffix;               // tokenizer.model: BOS / EOS added by Encode
    private bool _disposed;

    private HfTokenizer(NativeHfTokenizer withSpecial, NativeHfTokenizer? withoutSpecial, string?[] tokens, HashSet<int> special,
        SentencePieceDecoder? spmDecoder, int[] prefix, int[] suffix, string sourceFile, SpecialTokenIds specialIds, long? modelMaxLength, bool cleanUp,
        IReadOnlyList<string> warnings)
    {
        _withSpecial = withSpecial;
        _withoutSpecial = withoutSpecial;
        _tokens = tokens;
        _special = special;
        _spmDecoder = spmDecoder;
        _prefix = prefix;
        _suffix = suffix;
        SourceFile = sourceFile;
        SpecialTokens = specialIds;
        ModelMaxLength = modelMaxLength;
        CleanUpTokenizationSpaces = cleanUp;
        Warnings = warnings;
    }

    /// <summary>The tokenizer file in use (full path).</summary>
    public string SourceFile { get; }

    /// <inheritdoc/>
    public int VocabSize => _tokens.Length;

    /// <inheritdoc/>
    public SpecialTokenIds SpecialTokens { get; }

    /// <summary><c>model_max_length</c> from <c>tokenizer_config.json</c>; null when absent or transformers' "no limit" (1e30).</summary>
    public long? ModelMaxLength { get; }

    /// <summary>
    /// Whether <see cref="Decode"/> runs <see cref="TokenizationSpaces.CleanUp"/> (transformers'
    /// <c>clean_up_tokenization_spaces</c>) when its <c>cleanUpTokenizationSpaces</c> argument is null. Decided as
    /// transformers 5.7 and later decide it (<c>TokenizersBackend._decode</c>) for a BPE model, which every tokenizer
    /// read here is: true only when <c>tokenizer_config.json</c> sets both <c>clean_up_tokenization_spaces</c>
    /// (absent: false, transformers' default since 4.45) and
    /// <c>clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output</c>, since the clean-up deletes real
    /// spaces of BPE text (<c>"x != y"</c> becomes <c>"x!= y"</c>). Llama-3's folders set the first only: false, and a
    /// line in <see cref="Warnings"/>. transformers 4.x applied the first alone;
    /// <see cref="TokenizerLoadOptions.CleanUpTokenizationSpaces"/> sets this outright.
    /// </summary>
    public bool CleanUpTokenizationSpaces { get; }

    /// <summary>
    /// SHA-256 (hex) of the bytes that decide the ids: the tokenizer file, <c>tokenizer_config.json</c> if present and
    /// the reading mode; the tokenization cache keys on it.
    /// </summary>
    /// <remarks>
    /// It identifies the encoding (text to ids) only, which is what its users need: the corpus cache stores ids, and a
    /// model trained on ids (the demo's base manifest records it) fits every tokenizer that encodes alike. Decoding
    /// settings given at load time, <see cref="TokenizerLoadOptions.CleanUpTokenizationSpaces"/>, leave it unchanged,
    /// so two tokenizers with one fingerprint may decode the same ids to different text; compare
    /// <see cref="CleanUpTokenizationSpaces"/> too when the text matters. (An edit of <c>tokenizer_config.json</c>
    /// changes it whatever the field, since the file is hashed whole.)
    /// </remarks>
    public string Fingerprint => _fingerprint;

    private string _fingerprint = "";

    /// <summary>Settings accepted but not applied, and inconsistencies between the folder's files, one sentence each.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Loads the tokenizer of a checkpoint folder.</summary>
    /// <param name="folder">The folder (with <c>tokenizer.json</c> or <c>tokenizer.model</c>, optionally <c>tokenizer_config.json</c>, <c>generation_config.json</c>, <c>config.json</c>).</param>
    /// <param name="options">Which file to read; default: <c>tokenizer.json</c> if present.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist, or the path is a file (e.g. the tokenizer file itself).</exception>
    /// <exception cref="FileNotFoundException">The folder has no tokenizer file (or not the one asked for).</exception>
    /// <exception cref="NotSupportedException">The tokenizer type, or a setting of its pipeline, is not supported (named in the message).</exception>
    /// <exception cref="InvalidDataException">A file is malformed or names a token the vocabulary lacks (file, field and value named).</exception>
    public static HfTokenizer Load(string folder, TokenizerLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        options ??= new TokenizerLoadOptions();
        string dir = Path.GetFullPath(folder);
        if (File.Exists(dir))
            throw new DirectoryNotFoundException(
                $"Tokenizer folder '{dir}' is a file; pass the folder that holds it (with {TokenizerJsonName} or {SentencePieceModelName}), and choose the file with {nameof(TokenizerLoadOptions)}.{nameof(TokenizerLoadOptions.File)}.");
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Tokenizer folder '{dir}' does not exist.");
        string json = Path.Combine(dir, TokenizerJsonName), spm = Path.Combine(dir, SentencePieceModelName);
        bool useJson = options.File switch
        {
            TokenizerFile.TokenizerJson => File.Exists(json) ? true : throw new FileNotFoundException($"'{dir}' has no {TokenizerJsonName}.", json),
            TokenizerFile.SentencePieceModel => File.Exists(spm) ? false : throw new FileNotFoundException($"'{dir}' has no {SentencePieceModelName}.", spm),
            _ => File.Exists(json) || (File.Exists(spm) ? false
                : throw new FileNotFoundException($"'{dir}' has no tokenizer: neither {TokenizerJsonName} nor {SentencePieceModelName} is there.", json)),
        };
        var config = TokenizerConfigFile.ReadOrEmpty(Path.Combine(dir, TokenizerConfigName));
        var folderIds = new FolderIds(
            SpecialIdsFile.ReadIfPresent(Path.Combine(dir, GenerationConfigName)),
            SpecialIdsFile.ReadIfPresent(Path.Combine(dir, ConfigName)));
        HfTokenizer tokenizer = useJson ? FromTokenizerJson(json, config, folderIds, options) : FromSentencePiece(spm, config, folderIds, options);
        tokenizer._fingerprint = ComputeFingerprint(useJson ? json : spm, Path.Combine(dir, TokenizerConfigName));
        return tokenizer;
    }

    private static string ComputeFingerprint(string tokenizerFile, string configFile)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes("LongContext.Text tokenizer v1\n" + Path.GetFileName(tokenizerFile) + "\n"));
        sha.AppendData(File.ReadAllBytes(tokenizerFile));
        if (File.Exists(configFile)) sha.AppendData(File.ReadAllBytes(configFile));
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    private sealed record FolderIds(SpecialIdsFile? Generation, SpecialIdsFile? Model);

    private static HfTokenizer FromTokenizerJson(string path, TokenizerConfigFile config, FolderIds folderIds, TokenizerLoadOptions options)
    {
        var file = TokenizerJsonFile.Read(path);
        var warnings = new List<string>(file.Warnings);
        foreach (string key in file.SetButOverridden())
            warnings.Add($"'{path}': '{key}' is set; ignored, as transformers sets truncation and padding per call (off by default).");
        var byToken = TokenIndex(file.Tokens);
        foreach (AddedTokenEntry a in config.AddedTokens)
        {
            if (a.Id >= file.Tokens.Length || file.Tokens[a.Id] != a.Content)
                warnings.Add($"{TokenizerConfigName}: added_tokens_decoder has '{a.Content}' as id {a.Id}, {TokenizerJsonName} has " +
                    $"{(a.Id < file.Tokens.Length && file.Tokens[a.Id] is { } t ? $"'{t}'" : "no token")} there; the {TokenizerJsonName} entry is used.");
        }
        var special = Resolve(config, folderIds, byToken, file.Tokens.Length, unkFallback: file.UnkToken, spmIds: null, warnings);
        var withSpecial = NativeHfTokenizer.FromJson(file.WithSpecialTokensJson(), path);
        NativeHfTokenizer? withoutSpecial = null;
        try
        {
            withoutSpecial = NativeHfTokenizer.FromJson(file.WithoutSpecialTokensJson(), path);
            CheckTemplateAgainstConfig(withSpecial, config, special, warnings);
            bool cleanUp = ResolveCleanUp(config, options, warnings);
            return new HfTokenizer(withSpecial, withoutSpecial, file.Tokens, file.SpecialIds, null, [], [], path, special, config.ModelMaxLength, cleanUp, warnings);
        }
        catch
        {
            withoutSpecial?.Dispose();
            withSpecial.Dispose();
            throw;
        }
    }

    private static HfTokenizer FromSentencePiece(string path, TokenizerConfigFile config, FolderIds folderIds, TokenizerLoadOptions options)
    {
        SentencePieceModel model = SentencePieceModelReader.Read(path);
        SentencePieceToHfJson.CheckSupported(model, path);
        var tokens = model.Pieces.Select(p => (string?)p.Text).ToArray();
        var byToken = TokenIndex(tokens);
        var warnings = new List<string>();
        foreach (AddedTokenEntry a in config.AddedTokens)
        {
            if (a.Id >= tokens.Length || tokens[a.Id] != a.Content)
                throw new InvalidDataException(
                    $"{TokenizerConfigName}: added_tokens_decoder has '{a.Content}' as id {a.Id}, which is not that piece of '{path}' " +
                    $"({(a.Id < tokens.Length ? $"'{tokens[a.Id]}'" : $"it has {tokens.Length} pieces")}); tokens added on top of a " +
                    $"SentencePiece model need the folder's {TokenizerJsonName}.");
        }
        var special = new HashSet<int>(Enumerable.Range(0, tokens.Length).Where(i => model.Pieces[i].Type is PieceType.Control or PieceType.Unknown));
        var decoder = new SentencePieceDecoder(model, path);
        var spmIds = (Bos: model.BosId, Eos: model.EosId, Pad: model.PadId, Unk: model.UnkId);
        var ids = Resolve(config, folderIds, byToken, tokens.Length, unkFallback: null, spmIds, warnings);
        bool addBos = config.AddBosToken ?? true, addEos = config.AddEosToken ?? false;
        int[] prefix = addBos ? [ids.Bos ?? throw new InvalidDataException($"'{path}': add_bos_token is set but the folder defines no BOS token.")] : [];
        int[] suffix = addEos ? [ids.Eos ?? throw new InvalidDataException($"'{path}': add_eos_token is set but the folder defines no EOS token.")] : [];
        var native = NativeHfTokenizer.FromJson(SentencePieceToHfJson.ToJson(model, path), path);
        bool cleanUp = ResolveCleanUp(config, options, warnings);
        return new HfTokenizer(native, null, tokens, special, decoder, prefix, suffix, path, ids, config.ModelMaxLength, cleanUp, warnings);
    }

    private static Dictionary<string, int> TokenIndex(string?[] tokens)
    {
        var index = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
            if (tokens[i] is { } t) index.TryAdd(t, i);
        return index;
    }

    /// <summary>
    /// Special ids: the token named in <c>tokenizer_config.json</c>, else <c>generation_config.json</c>'s id, else
    /// <c>config.json</c>'s, else the tokenizer file's own (SentencePiece's trainer ids; tokenizer.json's unk_token).
    /// </summary>
    private static SpecialTokenIds Resolve(TokenizerConfigFile config, FolderIds folder, Dictionary<string, int> byToken, int vocabSize,
        string? unkFallback, (int Bos, int Eos, int Pad, int Unk)? spmIds, List<string> warnings)
    {
        int? Named(string? token, string field)
        {
            if (token is null) return null;
            return byToken.TryGetValue(token, out int id)
                ? id
                : throw new InvalidDataException($"{TokenizerConfigName}: '{field}' is '{token}', which is not in the vocabulary ({vocabSize} tokens).");
        }
        int? Checked(int? id, string file, string field)
        {
            if (id is null || (id >= 0 && id < vocabSize)) return id;
            if (id < 0)
            {
                // Llama-1 conversions write "pad_token_id": -1; transformers warns about a negative id and goes on.
                warnings.Add($"{file}: '{field}' is {id}, a negative id (an old placeholder for no such token); read as none, as transformers only warns about it.");
                return null;
            }
            throw new InvalidDataException($"{file}: '{field}' is {id}, outside the vocabulary [0, {vocabSize}).");
        }
        List<int>? CheckedList(IReadOnlyList<int>? ids, string file, string field)   // null when absent or only negative ids
        {
            if (ids is null) return null;
            var kept = ids.Select(i => Checked(i, file, field)).OfType<int>().ToList();
            return kept.Count == 0 && ids.Count > 0 ? null : kept;
        }
        int? FromSpm(int id) => id >= 0 && id < vocabSize ? id : (int?)null;
        static int? First(List<int>? list) => list is { Count: > 0 } ? list[0] : (int?)null;

        int? genBos = Checked(folder.Generation?.BosId, GenerationConfigName, "bos_token_id"), cfgBos = Checked(folder.Model?.BosId, ConfigName, "bos_token_id");
        int? genPad = Checked(folder.Generation?.PadId, GenerationConfigName, "pad_token_id"), cfgPad = Checked(folder.Model?.PadId, ConfigName, "pad_token_id");
        var genEos = CheckedList(folder.Generation?.EosIds, GenerationConfigName, "eos_token_id");
        var cfgEos = CheckedList(folder.Model?.EosIds, ConfigName, "eos_token_id");

        int? bos = Named(config.BosToken, "bos_token") ?? genBos ?? cfgBos ?? (spmIds is { } s1 ? FromSpm(s1.Bos) : null);
        int? eos = Named(config.EosToken, "eos_token") ?? First(genEos) ?? First(cfgEos) ?? (spmIds is { } s2 ? FromSpm(s2.Eos) : null);
        int? pad = Named(config.PadToken, "pad_token") ?? genPad ?? cfgPad ?? (spmIds is { } s3 ? FromSpm(s3.Pad) : null);
        int? unk = Named(config.UnkToken, "unk_token") ?? (unkFallback is { } u && byToken.TryGetValue(u, out int ui) ? ui : (int?)null)
            ?? (spmIds is { } s4 ? FromSpm(s4.Unk) : null);

        if (bos is { } b && genBos is { } gb && gb != b)
            warnings.Add($"{GenerationConfigName} has bos_token_id {gb}, the tokenizer's BOS is {b}; encoding uses {b}.");
        IReadOnlyList<int> stop = genEos ?? cfgEos ?? (eos is { } e ? [e] : []);
        return new SpecialTokenIds(bos, eos, pad, unk, stop.Distinct().ToArray());
    }

    /// <summary>Compares what the post-processor adds around an empty text with <c>add_bos_token</c> / <c>add_eos_token</c>.</summary>
    private static void CheckTemplateAgainstConfig(NativeHfTokenizer withSpecial, TokenizerConfigFile config, SpecialTokenIds ids, List<string> warnings)
    {
        int[] added = withSpecial.Encode("");
        bool hasBos = ids.Bos is { } b && added.Contains(b), hasEos = ids.Eos is { } e && added.Contains(e);
        if (config.AddBosToken is { } wantBos && wantBos != hasBos)
            warnings.Add($"{TokenizerConfigName} has add_bos_token={wantBos.ToString().ToLowerInvariant()} but the post-processor of {TokenizerJsonName} " +
                $"{(hasBos ? "adds" : "does not add")} BOS; LongContext follows {TokenizerJsonName}.");
        if (config.AddEosToken is { } wantEos && wantEos != hasEos)
            warnings.Add($"{TokenizerConfigName} has add_eos_token={wantEos.ToString().ToLowerInvariant()} but the post-processor of {TokenizerJsonName} " +
                $"{(hasEos ? "adds" : "does not add")} EOS; LongContext follows {TokenizerJsonName}.");
    }

    /// <summary>
    /// <see cref="CleanUpTokenizationSpaces"/>: the option if set, else transformers 5.7+'s rule for a BPE model
    /// (both keys true); a <c>clean_up_tokenization_spaces=true</c> that this rule ignores is a warning, as in transformers.
    /// </summary>
    private static bool ResolveCleanUp(TokenizerConfigFile config, TokenizerLoadOptions options, List<string> warnings)
    {
        if (options.CleanUpTokenizationSpaces is { } set) return set;
        if (config.CleanUpTokenizationSpaces != true) return false;
        if (config.CleanUpTokenizationSpacesForBpe == true) return true;
        warnings.Add($"{TokenizerConfigName} has clean_up_tokenization_spaces=true; not applied, as transformers 5.7 and later do not apply " +
            "it to a BPE tokenizer, where it deletes real spaces before punctuation (\"x != y\" -> \"x!= y\"). It is applied with " +
            $"{TokenizerConfigFile.CleanUpForBpeKey}=true in the same file (as in transformers), with " +
            $"{nameof(TokenizerLoadOptions)}.{nameof(TokenizerLoadOptions.CleanUpTokenizationSpaces)}=true, or per call.");
        return false;
    }

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_withoutSpecial is not null) return (addSpecialTokens ? _withSpecial : _withoutSpecial).Encode(text);
        int[] body = _withSpecial.Encode(text);
        if (!addSpecialTokens || (_prefix.Length == 0 && _suffix.Length == 0)) return body;
        return [.. _prefix, .. body, .. _suffix];
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null)
    {
        string text = DecodeText(ids, skipSpecialTokens);
        return cleanUpTokenizationSpaces ?? CleanUpTokenizationSpaces ? TokenizationSpaces.CleanUp(text) : text;
    }

    private string DecodeText(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (int id in ids) CheckId(id, nameof(ids));
        if (_withoutSpecial is not null) return (skipSpecialTokens ? _withSpecial : _withoutSpecial).Decode(ids);
        if (!skipSpecialTokens) return _spmDecoder!.Decode(ids);
        // Skipping special tokens drops control and unknown pieces before decoding, as transformers' slow
        // LlamaTokenizer does (so byte pieces on both sides of a dropped <s> form one run).
        var kept = new List<int>(ids.Length);
        foreach (int id in ids)
            if (!_special.Contains(id)) kept.Add(id);
        return _spmDecoder!.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(kept));
    }

    /// <inheritdoc/>
    public string IdToToken(int id)
    {
        CheckId(id, nameof(id));
        return _tokens[id]!;
    }

    /// <inheritdoc/>
    public bool IsSpecial(int id) => _special.Contains(id);

    private void CheckId(int id, string parameter)
    {
        if ((uint)id >= (uint)_tokens.Length || _tokens[id] is null)
            throw new ArgumentOutOfRangeException(parameter, id,
                (uint)id >= (uint)_tokens.Length
                    ? $"Token id must be in [0, {_tokens.Length}); got {id}."
                    : $"Token id {id} names no token in '{SourceFile}'.");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _withSpecial.Dispose();
        _withoutSpecial?.Dispose();
    }
}
