using LongContext.Tests.Support;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>
/// transformers' <c>clean_up_tokenization</c> list (<see cref="TokenizationSpaces.CleanUp"/>) and the streamed form
/// the incremental decoder uses. When <see cref="HfTokenizer"/> applies it: <see cref="CleanUpDecodingTests"/>.
/// <para>
/// Reference, read from transformers' source (no transformers here to run): the list is
/// <c>PreTrainedTokenizerBase.clean_up_tokenization</c> in <c>src/transformers/tokenization_utils_base.py</c>, a chain
/// of Python <c>str.replace</c> calls in this order: <c>" ." -> "."</c>, <c>" ?" -> "?"</c>, <c>" !" -> "!"</c>,
/// <c>" ," -> ","</c>, <c>" ' " -> "'"</c>, <c>" n't" -> "n't"</c>, <c>" 'm" -> "'m"</c>, <c>" 's" -> "'s"</c>,
/// <c>" 've" -> "'ve"</c>, <c>" 're" -> "'re"</c> (the same list in 4.x and 5.x). Each <c>str.replace</c> scans left to
/// right over non-overlapping matches, once; the next one runs on its result. The expected outputs below follow from
/// that by hand (and agree with CPython's <c>str.replace</c> run on the same chain).
/// </para>
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
public sealed class TokenizationSpacesTests
{
    public static TheoryData<string, string> Cleaned() => new()
    {
        { "", "" },
        { "Hello , world .", "Hello, world." },
        { "Really ? Yes !", "Really? Yes!" },
        { "I do n't know", "I don't know" },
        { "I 'm here", "I'm here" },
        { "it 's", "it's" },
        { "we 've", "we've" },
        { "they 're", "they're" },
        { "ca n't .", "can't." },
        { " .", "." },
        { "end .\n", "end.\n" },
        // " ' " loses both spaces; two non-overlapping matches in one pass.
        { "rock ' n ' roll", "rock'n'roll" },
        { "I ' ll", "I'll" },
        { "a ' ' b", "a'' b" },
        // One pass removes one space: the match " ." starts at the second space.
        { "a  .", "a ." },
        { "a . .", "a.." },
        // A BPE text the clean-up corrupts (why transformers 5.7 skips it for BPE).
        { "x != y", "x!= y" },
        // Order matters: " ." runs before " ' ", so " ' ." keeps its quote's leading space.
        { " ' .", " '." },
        // Passes feed each other: " ' " -> "'" leaves " 'm", which the later " 'm" pass takes.
        { "x  ' m", "x'm" },
        { "z  ' ve", "z've" },
        // Only what the list names: no " 't", no " ll", only U+0020 counts as the space, ordinal (case-sensitive).
        { "can 't", "can 't" },
        { "we 'll", "we 'll" },
        { "tab\t.", "tab\t." },
        { "a\u00A0.", "a\u00A0." },
        { "Do N'T", "Do N'T" },
        { "...", "..." },
        { "'s ,", "'s," },
    };

    [Theory]
    [MemberData(nameof(Cleaned))]
    public void CleanUp_AppliesTransformersListInOrder(string text, string expected)
        => Assert.Equal(expected, TokenizationSpaces.CleanUp(text));

    [Fact]
    public void CleanUp_NullIsRejected() => Assert.Throws<ArgumentNullException>(() => TokenizationSpaces.CleanUp(null!));

    [Theory]
    [MemberData(nameof(Cleaned))]
    public void Stream_EverySplitIntoTwoAndOneCharacterAPiece_GivesTheOneShotText(string text, string expected)
    {
        for (int cut = 0; cut <= text.Length; cut++)
            Assert.Equal(expected, Streamed([text[..cut], text[cut..]]));
        Assert.Equal(expected, Streamed(text.Select(c => c.ToString())));
    }

    [Fact]
    public void Stream_RandomTextsAndPieces_GiveTheOneShotText()
    {
        // Texts over the characters the patterns are made of, cut at random places (seeded).
        const string alphabet = " .?!,'ntmsvrea";
        var random = new Random(20240607);
        for (int n = 0; n < 3000; n++)
        {
            string text = new(Enumerable.Range(0, random.Next(0, 24)).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
            var pieces = new List<string>();
            for (int at = 0; at < text.Length;)
            {
                int length = Math.Min(random.Next(0, 5), text.Length - at);
                pieces.Add(text.Substring(at, length));
                at += length;
            }
            Assert.Equal(TokenizationSpaces.CleanUp(text), Streamed(pieces));
        }
    }

    [Fact]
    public void Stream_HoldsATrailingSpaceUntilTheNextPieceDecides()
    {
        var stream = new TokenizationSpacesStream();
        Assert.Equal("Hello", stream.Push("Hello "));
        Assert.Equal(".", stream.Push("."));
        Assert.Equal("", stream.Push(" "));
        Assert.Equal(" and", stream.Push("and"));
        Assert.Equal("", stream.Push(" n"));
        Assert.Equal("n't", stream.Push("'t"));
        Assert.Equal("", stream.Push(" "));
        Assert.Equal(" x", stream.Push("x"));
        Assert.Equal("", stream.Push(" '"));
        Assert.Equal("", stream.Push(" "));     // still " ' " or " ." to come
        Assert.Equal("'m", stream.Push("m"));   // " ' " -> "'"
        Assert.Equal("", stream.Push(" "));
        Assert.Equal(" ", stream.Flush());      // the end decides: nothing follows the space
        Assert.Equal("", stream.Flush());
    }

    private static string Streamed(IEnumerable<string> pieces)
    {
        var stream = new TokenizationSpacesStream();
        return string.Concat(pieces.Select(stream.Push)) + stream.Flush();
    }
}
