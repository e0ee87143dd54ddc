using LongContext.Llama.Evaluation;
using LongContext.Tests.Support;

namespace LongContext.Tests.Evaluation;

/// <summary>
/// Window starts and scored-token counts against the protocols' formulas: LongLoRA <c>range(0, T - L, 256)</c> minus
/// its last start, ceil((T - L) / 256) - 1 windows of L - 1 scored predictions; strided (HF guide) windows at k S for
/// k = 0..max(0, ceil((T - L) / S)), every token after the first scored exactly once when S &lt; L.
/// </summary>
[Trait(Category.Name, Category.Model)]
public sealed class PerplexityWindowsTests
{
    [Theory]
    [InlineData("T - L a multiple of 256", 4096 + 1024, 4096, 3)]
    [InlineData("T - L just above a multiple", 4096 + 1025, 4096, 4)]
    [InlineData("smallest stream with one window", 4096 + 257, 4096, 1)]
    [InlineData("PG19-like", 100_000, 8192, 358)]
    public void LongLora_StartsEvery256_LastDropped_WholeWindowScored(string name, long tokens, int length, int expectedWindows)
    {
        var windows = PerplexityWindows.LongLora(tokens, length);
        Assert.Equal((int)Math.Ceiling((tokens - length) / 256.0) - 1, windows.Count);
        Assert.True(expectedWindows == windows.Count, $"{name}: {windows.Count} windows");
        for (int i = 0; i < windows.Count; i++)
        {
            Assert.Equal(256L * i, windows[i].Start);
            Assert.Equal(length, windows[i].Length);
            Assert.Equal(length - 1, windows[i].Scored);
            Assert.True(windows[i].Start + length + 1 <= tokens);                 // the script's assert
        }
    }

    [Theory]
    [InlineData(4096 + 256, 4096)]
    [InlineData(4000, 4096)]
    public void LongLora_TooShortStream_IsAnErrorNamingTheNeed(long tokens, int length)
    {
        var e = Assert.Throws<ArgumentException>(() => PerplexityWindows.LongLora(tokens, length));
        Assert.Equal("tokens", e.ParamName);
        Assert.Contains($"more than {length + 256} tokens", e.Message);
    }

    [Theory]
    [InlineData("stride 256, L 1024", 5000, 1024, 256)]
    [InlineData("stride 1", 40, 8, 1)]
    [InlineData("stream shorter than L", 300, 1024, 256)]
    [InlineData("stream exactly L", 1024, 1024, 256)]
    [InlineData("stride L - 1", 100, 10, 9)]
    public void Strided_ScoresEveryTokenButTheFirstOnce(string name, long tokens, int length, int stride)
    {
        var windows = PerplexityWindows.Strided(tokens, length, stride);
        long expectedCount = 1 + Math.Max(0, (long)Math.Ceiling((tokens - length) / (double)stride));
        Assert.True(expectedCount == windows.Count, $"{name}: {windows.Count} windows, formula {expectedCount}");
        var scored = new List<long>();
        for (int i = 0; i < windows.Count; i++)
        {
            var w = windows[i];
            Assert.Equal((long)i * stride, w.Start);
            Assert.Equal(Math.Min(length, tokens - w.Start), w.Length);
            for (int j = Math.Max(1, w.FirstScored); j < w.Length; j++) scored.Add(w.Start + j);
        }
        Assert.Equal(windows[^1].Start + windows[^1].Length, tokens);
        Assert.Equal(Enumerable.Range(1, (int)tokens - 1).Select(t => (long)t), scored);
        Assert.Equal(tokens - 1, windows.Sum(w => (long)w.Scored));
    }

    [Fact]
    public void Strided_StrideEqualToL_LeavesEachWindowsFirstTokenUnscored()
    {
        var windows = PerplexityWindows.Strided(40, 10, 10);
        Assert.Equal(4, windows.Count);
        Assert.All(windows, w => Assert.Equal(9, w.Scored));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    public void Strided_StrideOutsideOneToL_IsRejected(int stride)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PerplexityWindows.Strided(100, 10, stride));
        Assert.Equal("stride", e.ParamName);
    }

    [Fact]
    public void WindowLengthBelowTwo_IsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PerplexityWindows.Strided(100, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PerplexityWindows.LongLora(100, 1));
    }
}
