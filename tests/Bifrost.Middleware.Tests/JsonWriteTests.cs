using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Serialization;
using Bifrost.Middleware.Endpoints;

namespace Bifrost.Middleware.Tests;

/// <summary>The endpoints' buffered JSON writer sends the same bytes the serializer produces, with a Content-Length.</summary>
public sealed class JsonWriteTests
{
    [Fact]
    public async Task WriteJsonAsync_sends_the_serializer_bytes_with_content_length()
    {
        var response = new ChatCompletionResponse
        {
            Id = "chatcmpl-1",
            Created = 1700000000,
            Model = "gpt-4o-mini",
            Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = "It's \"quoted\" <b>&</b> ünïcødé 😀 " + new string('x', 9000) }, FinishReason = "stop" }],
            Usage = new ChatUsage { PromptTokens = 1, CompletionTokens = 2, TotalTokens = 3 },
            ExtraFields = new BifrostExtraFields { RequestType = "chat_completion", Provider = "openai", ModelRequested = "gpt-4o-mini", Latency = 5 },
            AdditionalProperties = new Dictionary<string, JsonElement> { ["x_extra"] = JsonDocument.Parse("""{"a":[1,2,{"b":null}]}""").RootElement.Clone() },
        };
        var expected = JsonSerializer.SerializeToUtf8Bytes(response, BifrostJson.Context.ChatCompletionResponse);

        for (var i = 0; i < 2; i++) // the second call reuses the thread's cached writer
        {
            var context = new DefaultHttpContext();
            var body = new MemoryStream();
            context.Response.Body = body;
            await BifrostResults.WriteJsonAsync(context, response, BifrostJson.Context.ChatCompletionResponse, 201);

            Assert.Equal(201, context.Response.StatusCode);
            Assert.Equal("application/json", context.Response.ContentType);
            Assert.Equal(expected.Length, context.Response.ContentLength);
            Assert.Equal(Encoding.UTF8.GetString(expected), Encoding.UTF8.GetString(body.ToArray()));
        }
    }

    [Fact]
    public async Task Chat_answer_has_a_content_length_over_http()
    {
        await using var host = await Infrastructure.GatewayHost.StartAsync();
        using var answer = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"Hello there"}]}""", TestContext.Current.CancellationToken);
        var bytes = await answer.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken);
        Assert.Equal(bytes.Length, answer.Content.Headers.ContentLength);
        Assert.Equal("application/json", answer.Content.Headers.ContentType?.ToString());
        using var json = JsonDocument.Parse(bytes);
        Assert.Equal("Hello there", json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }
}
