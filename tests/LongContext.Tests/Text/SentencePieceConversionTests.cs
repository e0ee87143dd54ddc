using System.Text.Json.Nodes;
using LongContext.Tests.Support;
using LongContext.Text.SentencePiece;

namespace LongContext.Tests.Text;

/// <summary>
/// The <c>tokenizer.model</c> -> <c>tokenizer.json</c> conversion against the fixture's <c>tokenizer.json</c> made
/// from the same model by transformers' converter layout (pairs of folders found by identical vocabularies).
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
[Trait(Category.Name, Category.Reference)]
public sealed class SentencePieceConversionTests
{
    [Fact]
    public void Merges_OfAModel_EqualTheConvertedTokenizerJsonOfTheSameVocabulary()
    {
        var dirs = TokenizerFixtures.Folders().Select(TokenizerFixtures.FolderPath).ToList();
        int compared = 0;
        foreach (string spmDir in dirs.Where(d => File.Exists(Path.Combine(d, "tokenizer.model"))))
        {
            SentencePieceModel model = SentencePieceModelReader.Read(Path.Combine(spmDir, "tokenizer.model"));
            var ids = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < model.Pieces.Count; i++) ids[model.Pieces[i].Text] = i;
            foreach (string jsonDir in dirs.Where(d => File.Exists(Path.Combine(d, "tokenizer.json"))))
            {
                var m = JsonNode.Parse(File.ReadAllText(Path.Combine(jsonDir, "tokenizer.json")))!["model"]!;
                var vocab = m["vocab"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<int>());
                if (vocab.Count != ids.Count || vocab.Any(kv => !ids.TryGetValue(kv.Key, out int id) || id != kv.Value)) continue;
                var expected = m["merges"]!.AsArray().Select(x => x is JsonArray a
                    ? (a[0]!.GetValue<string>(), a[1]!.GetValue<string>())
                    : Split(x!.GetValue<string>())).ToList();
                Assert.Equal(expected, SentencePieceToHfJson.Merges(model.Pieces, ids));
                compared++;
            }
        }
        // A set without a tokenizer.model and a tokenizer.json of the same vocabulary would check nothing.
        Assert.True(compared > 0, $"no pair of tokenizer fixture folders ({string.Join(", ", dirs.Select(Path.GetFileName))}) holds a tokenizer.model and a tokenizer.json of the same vocabulary");
    }

    private static (string, string) Split(string merge)
    {
        int space = merge.IndexOf(' ', StringComparison.Ordinal);
        return (merge[..space], merge[(space + 1)..]);
    }

    [Fact]
    public void Reader_RejectsAPieceTypeSentencePieceDoesNotDefine()
    {
        byte[] proto = [0x0A, 0x05, 0x0A, 0x01, (byte)'a', 0x18, 0x09];   // pieces { piece: "a" type: 9 }
        var e = Assert.Throws<InvalidDataException>(() => SentencePieceModelReader.Parse(proto));
        Assert.Contains("9", e.Message);
    }
}
