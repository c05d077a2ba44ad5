using System.Text.Json;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware.Tests.Serialization;

/// <summary>
/// The conveniences on the wire types (string conversions, role factories, (model, ...) constructors) build exactly the
/// JSON the long form builds: no wire change. Reading JSON still uses the parameterless constructors.
/// </summary>
public sealed class WireTypeFactoryTests
{
    [Fact]
    public void A_request_from_the_factories_writes_the_same_JSON_as_the_long_form()
    {
        var shortForm = new ChatCompletionRequest("local/echo",
            ChatCompletionMessage.System("be terse"),
            ChatCompletionMessage.Developer("no markdown"),
            ChatCompletionMessage.User("Hi"),
            ChatCompletionMessage.Assistant("Hello"),
            ChatCompletionMessage.Tool("call_1", "42"));
        var longForm = new ChatCompletionRequest
        {
            Model = "local/echo",
            Messages =
            [
                new ChatCompletionMessage { Role = "system", Content = new ChatCompletionContent("be terse") },
                new ChatCompletionMessage { Role = "developer", Content = new ChatCompletionContent("no markdown") },
                new ChatCompletionMessage { Role = "user", Content = new ChatCompletionContent("Hi") },
                new ChatCompletionMessage { Role = "assistant", Content = new ChatCompletionContent("Hello") },
                new ChatCompletionMessage { Role = "tool", Content = new ChatCompletionContent("42"), ToolCallId = "call_1" },
            ],
        };

        var json = JsonSerializer.Serialize(shortForm, BifrostJson.Context.ChatCompletionRequest);

        Assert.Equal(JsonSerializer.Serialize(longForm, BifrostJson.Context.ChatCompletionRequest), json);
        Assert.Equal(
            """{"model":"local/echo","messages":[{"role":"system","content":"be terse"},{"role":"developer","content":"no markdown"},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"tool","content":"42","tool_call_id":"call_1"}]}""",
            json);
    }

    [Fact]
    public void A_string_converts_to_text_content_and_parts_stay_an_array()
    {
        var text = new ChatCompletionMessage { Role = "user", Content = "Hello" };
        var parts = ChatCompletionMessage.User(new ChatCompletionContent([new ChatContentPart { Type = "text", Text = "a" }]));

        Assert.Equal("""{"role":"user","content":"Hello"}""", JsonSerializer.Serialize(text, BifrostJson.Context.ChatCompletionMessage));
        Assert.Equal("""{"role":"user","content":[{"type":"text","text":"a"}]}""", JsonSerializer.Serialize(parts, BifrostJson.Context.ChatCompletionMessage));
        Assert.Equal("Hello", ChatCompletionContent.FromString("Hello").Text);
    }

    [Fact]
    public void Embeddings_and_responses_input_convert_from_strings_in_the_form_given()
    {
        Assert.Equal(
            """{"model":"local/echo","input":"one"}""",
            JsonSerializer.Serialize(new EmbeddingRequest("local/echo", "one"), BifrostJson.Context.EmbeddingRequest));
        Assert.Equal(
            """{"model":"local/echo","input":["a","b"]}""",
            JsonSerializer.Serialize(new EmbeddingRequest("local/echo", new[] { "a", "b" }), BifrostJson.Context.EmbeddingRequest));
        Assert.Equal(
            """{"model":"local/echo","input":["a"]}""",
            JsonSerializer.Serialize(new EmbeddingRequest("local/echo", TextInput.FromStrings("a")), BifrostJson.Context.EmbeddingRequest));
        Assert.Equal(
            """{"model":"local/echo","input":"hi"}""",
            JsonSerializer.Serialize(new ResponsesRequest("local/echo", "hi"), BifrostJson.Context.ResponsesRequest));
        ResponsesContent content = "text";
        Assert.Equal("text", content.Text);
    }

    [Fact]
    public void Reading_JSON_still_works_with_the_added_constructors()
    {
        var chat = JsonSerializer.Deserialize("""{"model":"m","messages":[{"role":"user","content":"x"}],"x_extra":1}""", BifrostJson.Context.ChatCompletionRequest)!;
        var embeddings = JsonSerializer.Deserialize("""{"model":"m","input":["a"]}""", BifrostJson.Context.EmbeddingRequest)!;
        var responses = JsonSerializer.Deserialize("""{"model":"m","input":"x"}""", BifrostJson.Context.ResponsesRequest)!;

        Assert.Equal("x", chat.Messages![0].Content!.Text);
        Assert.True(chat.AdditionalProperties!.ContainsKey("x_extra"));
        Assert.Equal("a", embeddings.Input!.Texts![0]);
        Assert.Equal("x", responses.Input!.Text);
    }

    [Fact]
    public void Missing_values_are_refused_where_they_are_given()
    {
        Assert.Throws<ArgumentNullException>(() => ChatCompletionMessage.User(null!));
        Assert.Throws<ArgumentNullException>(() => ChatCompletionMessage.User((string)null!));
        Assert.Throws<ArgumentException>(() => ChatCompletionMessage.Tool("", "x"));
        Assert.Throws<ArgumentException>(() => new ChatCompletionRequest("", ChatCompletionMessage.User("x")));
        Assert.Throws<ArgumentNullException>(() => new EmbeddingRequest("m", (string)null!));
        Assert.Throws<ArgumentNullException>(() => new ResponsesRequest("m", (ResponsesInput)null!));
    }

    [Fact]
    public async Task The_one_line_IBifrostClient_calls_route_like_the_request_form()
    {
        await using var gateway = await Infrastructure.GatewayHost.StartAsync();
        var bifrost = gateway.Services.GetRequiredService<IBifrostClient>();

        var answer = await bifrost.ChatCompletionAsync("local/echo", "one line", TestContext.Current.CancellationToken);
        var text = new System.Text.StringBuilder();
        await foreach (var chunk in bifrost.ChatCompletionStreamAsync("local/echo", "streamed line", TestContext.Current.CancellationToken))
        {
            text.Append(chunk.Choices.FirstOrDefault()?.Delta.Content);
        }

        var embeddings = await bifrost.EmbeddingsAsync("local/echo", ["a", "b", "c"], TestContext.Current.CancellationToken);

        Assert.Equal("one line", answer.Choices[0].Message!.Content);
        Assert.Equal("local", answer.ExtraFields!.Provider);
        Assert.Equal("streamed line", text.ToString());
        Assert.Equal(3, embeddings.Data.Count);
        Assert.False(embeddings.Data[0].Embedding.IsBase64);
    }
}
