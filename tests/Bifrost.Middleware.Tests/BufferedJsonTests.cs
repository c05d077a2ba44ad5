using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware.Tests;

/// <summary>Bodies with a Content-Length are parsed from a buffer; results and errors are those of the streaming parse.</summary>
public sealed class BufferedJsonTests
{
    public static TheoryData<string> Bodies() => new()
    {
        """{"model":"local/echo","messages":[{"role":"user","content":"Hi"}],"stream":false,"x_unknown":{"a":[1,2]}}""",
        """  {"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}}]}]}  """,
        """{"model":"m","messages":[{"role":"user","content":"Hi"}]} trailing""",
        """{"model":"m","messages":[{"role":"user","content":"Hi"}],}""",
        """{"model":"m","messages":[{"role":"user","content":"Hi"}]""",
        """{"model":"m","messages":[{"role":"user","content":42}]}""",
        """{"model":"m","temperature":"hot"}""",
        """[1,2,3]""",
        """null""",
        """{"model":"m","messages":[{"role":"user","content":"line\nbreak"}]}""",
        "{\n  \"model\": \"m\",\n  \"n\": 1.5\n}",
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task Buffered_parse_matches_the_streaming_parse(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var typeInfo = BifrostJson.Context.ChatCompletionRequest;

        var (expected, expectedError) = await Run(() => JsonSerializer.DeserializeAsync(new MemoryStream(bytes), typeInfo, TestContext.Current.CancellationToken));
        var (actual, actualError) = await Run(() => BufferedJson.DeserializeAsync(new MemoryStream(bytes), bytes.Length, typeInfo, TestContext.Current.CancellationToken));

        Assert.Equal(expectedError, actualError);
        Assert.Equal(
            expected is null ? "null" : JsonSerializer.Serialize(expected, typeInfo),
            actual is null ? "null" : JsonSerializer.Serialize(actual, typeInfo));
    }

    [Fact]
    public async Task A_truncated_body_fails_in_the_read()
    {
        var bytes = Encoding.UTF8.GetBytes("""{"model":"m"}""");
        await Assert.ThrowsAsync<EndOfStreamException>(() => BufferedJson.DeserializeAsync(new ThrowAtEndStream(bytes), bytes.Length + 10, BifrostJson.Context.ChatCompletionRequest, TestContext.Current.CancellationToken).AsTask());
    }

    private static async Task<(T? Value, string? Error)> Run<T>(Func<ValueTask<T?>> parse)
    {
        try
        {
            return (await parse(), null);
        }
        catch (JsonException ex)
        {
            return (default, $"{ex.Message} | {ex.Path} | {ex.LineNumber} | {ex.BytePositionInLine}");
        }
    }

    /// <summary>A body whose connection ends before its Content-Length: reading past the data throws, as a socket stream does.</summary>
    private sealed class ThrowAtEndStream(byte[] data) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Position >= Length ? throw new EndOfStreamException() : base.ReadAsync(buffer, cancellationToken);
    }
}
