using System.Text;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware.Tests.Serialization;

/// <summary>Issue 18: the splice that writes a client's chat or embeddings request bytes for a provider attempt (<see cref="RequestSplice"/>).</summary>
public sealed class RequestSpliceTests
{
    private static string? Splice(string json, string model = "gpt-4o", bool? stream = false) =>
        RequestSplice.TryWrite(Encoding.UTF8.GetBytes(json), model, stream, out var body) ? Encoding.UTF8.GetString(body) : null;

    [Fact]
    public void Only_the_top_level_model_is_replaced_and_nested_ones_stay()
    {
        Assert.Equal(
            """{"tools":[{"type":"function","function":{"name":"f","parameters":{"model":"x","fallbacks":1}}}],"model":"gpt-4o","x":{"model":"keep"}}""",
            Splice("""{"tools":[{"type":"function","function":{"name":"f","parameters":{"model":"x","fallbacks":1}}}],"model":"openai/gpt\u002d4o","fallbacks":["a/b"],"x":{"model":"keep"}}"""));
    }

    [Fact]
    public void Whitespace_inside_members_is_kept_and_between_members_dropped()
    {
        Assert.Equal(
            "{\"model\" : \"gpt-4o\",\"messages\": [ {\"role\":\"user\", \"content\":\"Hi\"} ],\"n\" :1}",
            Splice("{\n  \"model\" : \"a/b\",\n  \"messages\": [ {\"role\":\"user\", \"content\":\"Hi\"} ],\n  \"fallbacks\": [],\n  \"n\" :1\n}\n"));
    }

    [Fact]
    public void A_missing_model_is_written_first()
    {
        Assert.Equal("""{"model":"gpt-4o","messages":[]}""", Splice("""{"messages":[]}"""));
        Assert.Equal("""{"model":"gpt-4o"}""", Splice("{}"));
    }

    [Fact]
    public void The_model_is_written_with_json_escapes()
    {
        Assert.Equal("""{"model":"a\"b\\c\u0001"}""", Splice("""{"model":"x"}""", "a\"b\\c\u0001"));
    }

    [Fact]
    public void Stream_members_follow_the_attempt()
    {
        Assert.Equal("""{"model":"gpt-4o","n":1}""", Splice("""{"model":"m","stream":false,"stream_options":null,"n":1}"""));
        Assert.Equal("""{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}""", Splice("""{"model":"m","stream":true,"stream_options":{"include_usage":true}}""", stream: true));
        Assert.Null(Splice("""{"model":"m","stream":false}""", stream: true));
    }

    [Theory]
    [InlineData("""{"mod\u0065l":"m"}""")] // an escaped name
    [InlineData("""{"model":"m","n":1,"n":2}""")] // a name twice
    [InlineData("""{"model":"m","metadata":{"a":1}}""")] // metadata the typed reader rewrites
    [InlineData("""{"model":"m","metadata":{"a":null}}""")]
    [InlineData("""[1]""")] // not an object
    [InlineData("""{"model":"m"} x""")] // trailing content
    [InlineData("""{"model":"m",}""")] // a trailing comma
    [InlineData("""{"model":"m"/*c*/}""")] // a comment
    public void Bytes_that_could_mean_something_else_are_refused(string json) => Assert.Null(Splice(json));

    [Fact]
    public void Without_chat_rules_only_model_and_fallbacks_are_touched()
    {
        Assert.Equal("""{"model":"gpt-4o","stream":false,"metadata":{"a":1}}""", Splice("""{"model":"m","fallbacks":[],"stream":false,"metadata":{"a":1}}""", stream: null));
    }

    [Fact]
    public void String_metadata_passes()
    {
        Assert.Equal("""{"model":"gpt-4o","metadata":{"a":"1","b":"x"}}""", Splice("""{"model":"m","metadata":{"a":"1","b":"x"}}"""));
        Assert.Equal("""{"model":"gpt-4o","metadata":null}""", Splice("""{"model":"m","metadata":null}"""));
    }

    [Fact]
    public void More_members_than_the_bound_are_refused()
    {
        var members = string.Join(",", Enumerable.Range(0, RequestSplice.MaxMembers).Select(static i => $"\"f{i}\":{i}"));
        Assert.NotNull(Splice("{" + members + "}"));
        Assert.Null(Splice("{\"model\":\"m\"," + members + "}"));
    }

    [Fact]
    public void Released_bytes_are_never_read()
    {
        var json = Encoding.UTF8.GetBytes("""{"model":"m"}""");
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(json.Length);
        json.CopyTo(rented, 0);
        var bytes = RequestBytes.Own(rented, json.Length);
        Assert.True(bytes.TryWriteBody("x", stream: false, out var body));
        Assert.Equal("""{"model":"x"}""", Encoding.UTF8.GetString(body));
        bytes.Release();
        Assert.False(bytes.TryWriteBody("x", stream: false, out _));
        bytes.Release(); // twice: returned to the pool once
    }
}
