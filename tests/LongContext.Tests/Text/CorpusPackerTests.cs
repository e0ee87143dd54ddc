using LongContext.Tests.Support;
using LongContext.Text.Corpus;
using LongContext.Text.Tokenization;

namespace LongContext.Tests.Text;

/// <summary>
/// Packing against hand-computed rows and the closed-form row count of each scheme (LongLoRA's
/// <c>eos.join</c> + <c>pad_to_multiple_of</c>; LongQLoRA's truncate-or-pad).
/// </summary>
[Trait(Category.Name, TextCategory.Name)]
public sealed class CorpusPackerTests
{
    private static readonly SpecialTokenIds Special = new(Bos: 1, Eos: 2, Pad: 0, Unk: null, StopIds: [2]);
    private static readonly int[][] Docs = [[10, 11, 12], [20, 21], [30]];

    private static List<string> Rows(IEnumerable<PackedRow> rows) => rows.Select(r => R(r.InputIds, r.Length)).ToList();

    /// <summary>A row as text ("1,10,11,12|4"), so rows compare by value.</summary>
    private static string R(int[] ids, int length) => $"{string.Join(',', ids)}|{length}";

    [Fact]
    public void Concatenate_OneGroup_JoinsWithEosBehindOneBos_AndPadsTheTail()
    {
        // stream: BOS 10 11 12 EOS 20 21 EOS 30  (9 tokens) -> ceil(9 / 4) = 3 rows
        var rows = Rows(CorpusPacker.Pack(Docs, Special, new PackingOptions { RowLength = 4, DocumentsPerGroup = null }));
        Assert.Equal(3, rows.Count);
        Assert.Equal(R([1, 10, 11, 12], 4), rows[0]);
        Assert.Equal(R([2, 20, 21, 2], 4), rows[1]);
        Assert.Equal(R([30, 0, 0, 0], 1), rows[2]);
    }

    [Fact]
    public void Concatenate_GroupsOfTwo_EachGroupStartsWithBosAndPadsItsOwnTail()
    {
        // group 1: BOS 10 11 12 EOS 20 21 (7) -> 2 rows; group 2: BOS 30 (2) -> 1 row
        var rows = Rows(CorpusPacker.Pack(Docs, Special, new PackingOptions { RowLength = 4, DocumentsPerGroup = 2 }));
        Assert.Equal(3, rows.Count);
        Assert.Equal(R([1, 10, 11, 12], 4), rows[0]);
        Assert.Equal(R([2, 20, 21, 0], 3), rows[1]);
        Assert.Equal(R([1, 30, 0, 0], 2), rows[2]);
    }

    [Fact]
    public void Concatenate_ExactMultiple_HasNoPaddingRow()
    {
        var rows = Rows(CorpusPacker.Pack([[10, 11], [20]], Special, new PackingOptions { RowLength = 5 }));
        Assert.Equal([R([1, 10, 11, 2, 20], 5)], rows);
    }

    [Fact]
    public void Concatenate_EmptyDocument_GivesTwoEosInARow_AsJoiningAnEmptyString()
    {
        var rows = Rows(CorpusPacker.Pack([[10], [], [30]], Special, new PackingOptions { RowLength = 5 }));
        Assert.Equal([R([1, 10, 2, 2, 30], 5)], rows);
    }

    [Theory]
    [InlineData(7, 1000, 11)]
    [InlineData(64, 3, 12)]
    [InlineData(16, 1, 13)]
    public void Concatenate_RowCountAndTokens_MatchTheClosedForm(int rowLength, int perGroup, int seed)
    {
        var random = new Random(seed);
        int[][] docs = Enumerable.Range(0, 40).Select(_ => Enumerable.Range(100, random.Next(0, 50)).ToArray()).ToArray();
        // Per group of g documents: 1 (BOS) + sum of lengths + (g - 1) EOS tokens, padded to a multiple of L.
        long rows = 0, tokens = 0;
        foreach (var group in docs.Chunk(perGroup))
        {
            long length = 1 + group.Sum(d => d.Length) + (group.Length - 1);
            rows += (length + rowLength - 1) / rowLength;
            tokens += length;
        }
        var packed = CorpusPacker.Pack(docs, Special, new PackingOptions { RowLength = rowLength, DocumentsPerGroup = perGroup }).ToList();
        Assert.Equal(rows, packed.Count);
        Assert.Equal(tokens, packed.Sum(r => (long)r.Length));
        Assert.All(packed, r => Assert.Equal(rowLength, r.InputIds.Length));
        Assert.All(packed.Where(r => r.Length < rowLength), r => Assert.All(r.InputIds[r.Length..], id => Assert.Equal(0, id)));
    }

    [Fact]
    public void TruncateOrPad_EachDocumentIsBosPlusItsTokens_TruncatedOrPaddedToL()
    {
        var rows = Rows(CorpusPacker.Pack([[10, 11, 12, 13, 14, 15], [20], []], Special, new PackingOptions { RowLength = 4, Mode = PackingMode.TruncateOrPad }));
        Assert.Equal(3, rows.Count);                      // one row per document
        Assert.Equal(R([1, 10, 11, 12], 4), rows[0]);      // truncated: BOS counts in L
        Assert.Equal(R([1, 20, 0, 0], 2), rows[1]);
        Assert.Equal(R([1, 0, 0, 0], 1), rows[2]);
    }

    [Fact]
    public void TruncateOrPad_AnEmptyDocumentWithoutBos_IsRefusedNamingTheDocumentAndWhy()
    {
        // Before: it became a row of 0 tokens, which PackedRows.Write refused later ("Row 1 has 4 ids and length 0")
        // without saying which document or why. With BOS the same document is a row of one token (above).
        var options = new PackingOptions { RowLength = 4, Mode = PackingMode.TruncateOrPad, AddBos = false };
        using var rows = CorpusPacker.Pack([[10, 11], [], [20]], Special, options).GetEnumerator();
        Assert.True(rows.MoveNext());
        Assert.Equal(R([10, 11, 0, 0], 2), R(rows.Current.InputIds, rows.Current.Length));
        var e = Assert.Throws<ArgumentException>(() => rows.MoveNext());
        Assert.Equal("documents", e.ParamName);
        Assert.Contains("document 1 is empty", e.Message, StringComparison.Ordinal);
        Assert.Contains("AddBos is false", e.Message, StringComparison.Ordinal);
        Assert.Contains("a row with no tokens", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PadId_DefaultsToEos_WhenTheTokenizerHasNoPad()
    {
        var noPad = Special with { Pad = null };
        var row = CorpusPacker.Pack([[10]], noPad, new PackingOptions { RowLength = 4 }).Single();
        Assert.Equal([1, 10, 2, 2], row.InputIds);
        Assert.Equal(2, row.Length);
    }

    [Fact]
    public void PackStream_CutsAContinuousStreamAcrossChunks_AddingNoSpecialTokens()
    {
        var rows = Rows(CorpusPacker.PackStream([[5, 6, 7], [8, 9]], rowLength: 2, padId: 0));
        Assert.Equal([R([5, 6], 2), R([7, 8], 2), R([9, 0], 1)], rows);
    }

    [Fact]
    public void Batch_LabelsAreIdsWithMinus100AtPadding_AndMaskIsOneForTokens()
    {
        var rows = CorpusPacker.Pack(Docs, Special, new PackingOptions { RowLength = 4, DocumentsPerGroup = 2 }).ToList();
        using var batch = TrainingBatch.FromRows(rows);
        Assert.Equal([3L, 4L], batch.InputIds.shape);
        Assert.Equal(TorchSharp.torch.ScalarType.Int64, batch.Labels.dtype);
        Assert.Equal([1L, 10, 11, 12, 2, 20, 21, 0, 1, 30, 0, 0], batch.InputIds.data<long>().ToArray());
        Assert.Equal([1L, 10, 11, 12, 2, 20, 21, -100, 1, 30, -100, -100], batch.Labels.data<long>().ToArray());
        Assert.Equal([1L, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0], batch.AttentionMask.data<long>().ToArray());
    }

    public static TheoryData<string, PackedRow[], int[]?, string, string> BadBatches() => new()
    {
        { "a token count above L", [new([1, 2, 3], 5)], null, "rows", "Row 0 has 5 tokens; expected a count in [0, 3]" },
        { "a negative token count", [new([1, 2, 3], 3), new([1, 2, 3], -1)], null, "rows", "Row 1 has -1 tokens" },
        { "a null row", [new([1, 2, 3], 3), null!], null, "rows", "Row 1 (or its ids) is null" },
        { "row indices not one per row", [new([1, 2, 3], 3), new([1, 2, 3], 3)], [7], "rowIndices", "1 entries for 2 rows" },
    };

    [Theory]
    [MemberData(nameof(BadBatches))]
    public void Batch_BadRowsOrIndices_AreNamed(string name, PackedRow[] rows, int[]? indices, string parameter, string fragment)
    {
        // Before: a count outside [0, L] silently masked everything (or nothing), a null row was a NullReferenceException,
        // and RowIndices could disagree with the rows.
        var e = Assert.ThrowsAny<ArgumentException>(() => TrainingBatch.FromRows(rows, indices).Dispose());
        Assert.Equal(parameter, e.ParamName);
        Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), $"{name}: {e.Message}");
    }

    [Fact]
    public void Options_RejectRowLengthBelowTwo_AndUndefinedMode()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new PackingOptions { RowLength = 1 });
        Assert.Contains("RowLength", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PackingOptions { Mode = (PackingMode)7 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new PackingOptions { DocumentsPerGroup = 0 });
    }

    [Theory]
    [InlineData(2, "DocumentsPerGroup 2")]
    [InlineData(null, "DocumentsPerGroup null (the whole corpus)")]
    public void TruncateOrPad_WithDocumentsPerGroupSet_IsRefusedAtOnce(int? perGroup, string fragment)
    {
        var options = new PackingOptions { RowLength = 4, Mode = PackingMode.TruncateOrPad, DocumentsPerGroup = perGroup };
        var e = Assert.Throws<ArgumentException>(() => CorpusPacker.Pack(Docs, Special, options));   // not deferred to enumeration
        Assert.Equal("options", e.ParamName);
        Assert.Contains(fragment, e.Message);
        Assert.Contains("TruncateOrPad", e.Message);
        // The default value, set explicitly, is accepted: one row per document.
        Assert.Equal(Docs.Length, Rows(CorpusPacker.Pack(Docs, Special, options with { DocumentsPerGroup = PackingOptions.DefaultDocumentsPerGroup })).Count);
    }

    [Fact]
    public void CheckFits_RowLongerThanTheModelTakes_NamesValueAndLimit()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CorpusPacker.CheckFits(8192, 4096));
        Assert.Contains("8192", e.Message);
        Assert.Contains("4096", e.Message);
        Assert.Contains("max_position_embeddings", e.Message);
        CorpusPacker.CheckFits(4096, 4096);
    }

    public static TheoryData<string, PackingMode?, int[][], string> BadDocuments() => new()
    {
        { "a -100 label in a document (Concatenate)", PackingMode.Concatenate, [[10], [20, -100]], "document 1 holds -100 at position 1" },
        { "a negative id (TruncateOrPad)", PackingMode.TruncateOrPad, [[-5, 10]], "document 0 holds -5 at position 0" },
        { "a null document", PackingMode.Concatenate, [[10], null!], "document 1 is null" },
        { "a negative id in a stream chunk", null, [[10, 11], [12, -1]], "chunk 1 holds -1 at position 1" },
    };

    [Theory]
    [MemberData(nameof(BadDocuments))]
    public void Pack_NullDocumentOrNegativeId_NamesDocumentPositionAndValue(string name, PackingMode? mode, int[][] documents, string fragment)
    {
        // Before: a negative id went into the rows as it was (failing later in the embedding), a null one was a NullReferenceException.
        IEnumerable<PackedRow> rows = mode is { } m
            ? CorpusPacker.Pack(documents, Special, new PackingOptions { RowLength = 4, Mode = m })
            : CorpusPacker.PackStream(documents, 4, 0);
        var e = Assert.ThrowsAny<ArgumentException>(() => rows.ToList());
        Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), $"{name}: {e.Message}");
        Assert.Equal(mode is null ? "chunks" : "documents", e.ParamName);
    }

    [Fact]
    public void Pack_WithoutEos_InConcatenateMode_SaysSo()
    {
        var e = Assert.Throws<InvalidOperationException>(() => CorpusPacker.Pack(Docs, Special with { Eos = null }, new PackingOptions()).ToList());
        Assert.Contains("EOS", e.Message);
    }
}
