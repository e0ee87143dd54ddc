using System.Text;

namespace LongContext.Text.Tokenization;

/// <summary>
/// transformers' <c>clean_up_tokenization</c>: the English clean-up that <c>decode</c> runs on decoded text when
/// <c>clean_up_tokenization_spaces</c> is on (see <see cref="HfTokenizer.CleanUpTokenizationSpaces"/> for when that is).
/// </summary>
public static class TokenizationSpaces
{
    /// <summary>
    /// transformers' replacement list, in its order (<c>PreTrainedTokenizerBase.clean_up_tokenization</c> in
    /// <c>tokenization_utils_base.py</c>, unchanged from 4.x to 5.x). Every pattern starts with a space.
    /// </summary>
    internal static readonly (string Pattern, string Replacement)[] Replacements =
    [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
        (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ];

    /// <summary>
    /// Applies transformers' list to a text, as Python's <c>str.replace</c> chain does: each replacement in turn over
    /// the whole result of the previous one, each left to right over non-overlapping matches, ordinal. So
    /// <c>"a , b ."</c> becomes <c>"a, b."</c>, <c>"do n't"</c> <c>"don't"</c>, and <c>"a  ."</c> (two spaces)
    /// <c>"a ."</c>: one pass removes one space.
    /// </summary>
    /// <param name="text">The decoded text.</param>
    /// <returns>The cleaned text; the same instance when nothing matches.</returns>
    public static string CleanUp(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach ((string pattern, string replacement) in Replacements)
            text = text.Replace(pattern, replacement, StringComparison.Ordinal);
        return text;
    }
}

/// <summary>
/// <see cref="TokenizationSpaces.CleanUp"/> over a text that arrives in pieces: the outputs of <see cref="Push"/>
/// and <see cref="Flush"/> concatenate to <c>CleanUp</c> of the concatenated inputs, wherever the pieces split it.
/// One stage per replacement, each holding back the shortest tail that could still start a match (a trailing
/// <c>" "</c>, <c>" n"</c>, <c>" n'"</c>, <c>" '"</c>, <c>" 'v"</c>, <c>" 'r"</c>), so a space is released once
/// the next piece shows it is not followed by punctuation. Not thread-safe.
/// </summary>
internal sealed class TokenizationSpacesStream
{
    private readonly Stage[] _stages = TokenizationSpaces.Replacements.Select(r => new Stage(r.Pattern, r.Replacement)).ToArray();

    /// <summary>Adds a piece; returns the cleaned text that no later piece can change.</summary>
    public string Push(string piece)
    {
        foreach (Stage stage in _stages) piece = stage.Push(piece);
        return piece;
    }

    /// <summary>Returns what is held back, cleaned as the end of the text, and starts over.</summary>
    public string Flush()
    {
        string rest = "";
        foreach (Stage stage in _stages) rest = stage.Push(rest) + stage.Flush();
        return rest;
    }

    /// <summary>One <c>str.replace</c> over a stream.</summary>
    private sealed class Stage(string pattern, string replacement)
    {
        private string _held = "";

        public string Push(string piece)
        {
            if (piece.Length == 0) return "";
            string s = _held + piece;
            var output = new StringBuilder(s.Length);
            int from = 0;
            for (int at; (at = s.IndexOf(pattern, from, StringComparison.Ordinal)) >= 0; from = at + pattern.Length)
                output.Append(s, from, at - from).Append(replacement);
            // No match starts in [from, s.Length) within s; one may still start where the rest of s is a proper
            // prefix of the pattern. Hold from the first such position: no match can start before it.
            int hold = s.Length;
            for (int j = Math.Max(from, s.Length - pattern.Length + 1); j < s.Length; j++)
                if (pattern.AsSpan().StartsWith(s.AsSpan(j), StringComparison.Ordinal)) { hold = j; break; }
            output.Append(s, from, hold - from);
            _held = s[hold..];
            return output.ToString();
        }

        public string Flush()
        {
            string held = _held;   // a proper prefix of the pattern: no match in it
            _held = "";
            return held;
        }
    }
}
