using System.Text.Json.Nodes;
using LongContext.IO;
using LongContext.Tests.Support;

namespace LongContext.Tests.IO;

/// <summary>The one reader of HF JSON fields: its kinds, its integer rule, null as absent, and messages naming file, key, value and expectation.</summary>
[Trait(Category.Name, Category.Build)]
public sealed class JsonFieldReaderTests
{
    private static JsonFieldReader Reader(string json) => new(JsonNode.Parse(json)!.AsObject(), "models/x/config.json");

    [Theory]
    [InlineData("integer literal", "4096", 4096)]
    [InlineData("whole number with a fraction part", "4096.0", 4096)]
    [InlineData("exponent form", "4.096e3", 4096)]
    [InlineData("negative", "-1", -1)]
    public void Integer_AcceptsWholeNumbers(string form, string json, int expected)
        => Assert.True(expected == Reader($$"""{"n": {{json}}}""").Integer("n"), form);

    [Theory]
    [InlineData("a fraction", "40.5")]
    [InlineData("past the int range", "3000000000")]
    [InlineData("a string", "\"40\"")]
    [InlineData("a boolean", "true")]
    public void Integer_RefusesOtherValuesNamingFileKeyAndValue(string why, string json)
    {
        var ex = Assert.Throws<InvalidDataException>(() => Reader($$"""{"n": {{json}}}""").Integer("n"));
        Assert.True(ex.Message == $"models/x/config.json: n must be an integer; got {json}.", $"{why}: {ex.Message}");
    }

    [Theory]
    [InlineData("absent", "{}")]
    [InlineData("null", """{"n": null}""")]
    public void AbsentOrNull_ReadsAsNull(string form, string json)
    {
        var reader = Reader(json);
        Assert.True(reader.Integer("n") is null && reader.Number("n") is null && reader.Boolean("n") is null
                    && reader.String("n") is null && reader.Numbers("n") is null && reader.Object("n") is null, form);
    }

    [Fact]
    public void NestedObject_MessagesCarryThePath()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Reader("""{"rope_parameters": {"factor": "4"}}""").Object("rope_parameters")!.Number("factor"));
        Assert.Equal("models/x/config.json: rope_parameters.factor must be a number; got \"4\".", ex.Message);
    }

    [Fact]
    public void NumberList_RefusesANonNumberEntry()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Reader("""{"l": [1, "2"]}""").Numbers("l"));
        Assert.Contains("l must be a list of numbers", ex.Message);
    }

    [Fact]
    public void Unread_ListsTheKeysNoGetterTouched()
    {
        var reader = Reader("""{"a": 1, "b": 2, "c": 3}""");
        reader.Integer("a");
        reader.MarkRead("c");
        Assert.Equal(new[] { "b" }, reader.Unread);
    }
}
