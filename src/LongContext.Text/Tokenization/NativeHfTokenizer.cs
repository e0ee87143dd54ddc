using System.Runtime.InteropServices;

namespace LongContext.Text.Tokenization;

/// <summary>
/// One HF tokenizers pipeline (Rust, through Tokenizers.DotNet) loaded from <c>tokenizer.json</c> text.
/// Tokenizers.DotNet loads only from a path, always encodes with <c>add_special_tokens=true</c> and always decodes
/// with <c>skip_special_tokens=true</c>; <see cref="HfTokenizer"/> gets the other two modes from a second pipeline
/// loaded from an edited copy of the file. The native library keeps each pipeline in a map guarded by a
/// reader-writer lock, so concurrent encodes and decodes are safe.
/// </summary>
internal sealed class NativeHfTokenizer : IDisposable
{
    private readonly Tokenizers.DotNet.Tokenizer _tokenizer;

    private NativeHfTokenizer(Tokenizers.DotNet.Tokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>Loads a pipeline from JSON text (written to a temporary file that is deleted again).</summary>
    /// <param name="json">The <c>tokenizer.json</c> text.</param>
    /// <param name="origin">The file the text came from, for error messages.</param>
    public static NativeHfTokenizer FromJson(string json, string origin)
    {
        string temp = Path.Combine(Path.GetTempPath(), $"longcontext-tokenizer-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(temp, json);
            return new NativeHfTokenizer(new Tokenizers.DotNet.Tokenizer(temp));
        }
        catch (Tokenizers.DotNet.TokenizerException e)
        {
            throw new InvalidDataException($"HF tokenizers cannot load '{origin}': {e.Message}", e);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new PlatformNotSupportedException(
                $"The native HF tokenizers library (libhf_tokenizers, from the NuGet package Tokenizers.DotNet.runtime.<rid>) " +
                $"could not be loaded for {RuntimeInformation.RuntimeIdentifier}: {e.Message} LongContext.Text references the " +
                "linux-x64 package; on another platform add Tokenizers.DotNet.runtime.<your rid> to the application.", e);
        }
        finally
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Encodes with the pipeline's post-processor (the only mode Tokenizers.DotNet offers).</summary>
    public int[] Encode(string text)
    {
        uint[] ids;
        try
        {
            ids = _tokenizer.Encode(text);
        }
        catch (Tokenizers.DotNet.TokenizerException e)
        {
            throw new ArgumentException($"HF tokenizers could not encode the text ({text.Length} chars): {e.Message}", nameof(text), e);
        }
        var result = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) result[i] = checked((int)ids[i]);
        return result;
    }

    /// <summary>Decodes, skipping the tokens the pipeline marks special (the only mode Tokenizers.DotNet offers).</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var native = new uint[ids.Length];
        for (int i = 0; i < ids.Length; i++) native[i] = (uint)ids[i];
        try
        {
            return _tokenizer.Decode(native);
        }
        catch (Tokenizers.DotNet.TokenizerException e)
        {
            throw new InvalidOperationException($"HF tokenizers could not decode {ids.Length} ids: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _tokenizer.Dispose();
}
