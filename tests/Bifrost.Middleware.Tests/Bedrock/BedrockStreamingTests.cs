using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>ConverseStream event-stream frames → chat completion chunks, and exception frames → errors.</summary>
public sealed class BedrockStreamingTests : BedrockTestBase
{
    [Fact]
    public async Task Events_become_chunks_role_first_then_reasoning_text_tool_calls_finish_and_usage()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(
            new JsonArray(
                new JsonObject { ["reasoningContent"] = new JsonObject { ["reasoningText"] = new JsonObject { ["text"] = "Think first." } } },
                FakeBedrockUpstream.Text("Let me look."),
                FakeBedrockUpstream.ToolUse("tooluse_a", "lookup", new JsonObject { ["q"] = "bifrost", ["n"] = 3 }),
                FakeBedrockUpstream.ToolUse("tooluse_b", "other", [])),
            "tool_use",
            input: 30,
            output: 44,
            cacheRead: 8);
        await using var host = await StartHostAsync();

        var chunks = await CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), Request("look up bifrost", stream: true), Ct));

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream", sent.RawTarget);
        Assert.Equal("application/vnd.amazon.eventstream", sent.Headers["accept"]);
        Assert.Null(sent.Body!["stream"]);
        Assert.All(chunks, c => Assert.Equal("chatcmpl-req-1", c.Id));
        Assert.Equal("assistant", chunks[0].Choices[0].Delta.Role);
        Assert.Equal("Think first.", string.Concat(chunks.Select(c => c.Choices.FirstOrDefault()?.Delta.AdditionalProperties is { } extra && extra.TryGetValue("reasoning", out var r) ? r.GetString() : null)));
        Assert.Equal("Let me look.", string.Concat(chunks.Select(c => c.Choices.FirstOrDefault()?.Delta.Content)));
        var calls = chunks.SelectMany(c => c.Choices).SelectMany(ch => ch.Delta.ToolCalls ?? []).ToList();
        var first = calls.Where(c => c.Index == 0).ToList();
        Assert.Equal("tooluse_a", first[0].Id);
        Assert.Equal("lookup", first[0].Function!.Name);
        Assert.Equal("""{"q":"bifrost","n":3}""", string.Concat(first.Select(c => c.Function!.Arguments)));
        var second = calls.Where(c => c.Index == 1).ToList();
        Assert.Equal("tooluse_b", second[0].Id);
        Assert.Equal("{}", string.Concat(second.Select(c => c.Function!.Arguments)));
        var finish = Assert.Single(chunks, c => c.Choices.Count > 0 && c.Choices[0].FinishReason is not null);
        Assert.Equal("tool_calls", finish.Choices[0].FinishReason);
        var usage = chunks[^1];
        Assert.Empty(usage.Choices);
        Assert.Equal(38, usage.Usage!.PromptTokens);
        Assert.Equal(44, usage.Usage.CompletionTokens);
        Assert.Equal(82, usage.Usage.TotalTokens);
        Assert.Equal(8, usage.Usage.PromptTokensDetails!.Value.GetProperty("cached_tokens").GetInt32());
    }

    [Theory]
    [InlineData("throttlingException", 429, true)]
    [InlineData("modelStreamErrorException", 424, true)]
    [InlineData("validationException", 400, false)]
    [InlineData("serviceUnavailableException", 503, true)]
    [InlineData("internalServerException", 500, true)]
    public async Task An_exception_frame_after_the_first_chunk_is_thrown_as_the_providers_error(string exceptionType, int status, bool retryable)
    {
        Upstream.RawStream = answer => [.. FakeBedrockUpstream.Events(answer).Take(2), FakeBedrockUpstream.Exception(exceptionType, "Something went wrong upstream.")];
        await using var host = await StartHostAsync();
        var received = new List<ChatCompletionChunk>();

        var error = await Assert.ThrowsAsync<BifrostException>(async () =>
        {
            await foreach (var chunk in Adapter(host).StreamChatCompletionAsync(Context(), Request("hello there friend", stream: true), Ct))
            {
                received.Add(chunk);
            }
        });

        Assert.Equal(2, received.Count); // the role chunk and "echo:"
        Assert.Equal(status, error.StatusCode);
        Assert.Equal(char.ToUpperInvariant(exceptionType[0]) + exceptionType[1..], error.Error.Error.Code);
        Assert.Equal("Something went wrong upstream.", error.Message);
        Assert.Equal(retryable, error.IsRetryable);
    }

    [Fact]
    public async Task A_stream_that_ends_before_message_stop_is_a_502_incomplete_stream()
    {
        Upstream.RawStream = answer => FakeBedrockUpstream.Events(answer).Take(3);
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), Request("hello there friend", stream: true), Ct)));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("incomplete_stream", error.Error.Error.Code);
    }

    [Fact]
    public async Task A_frame_with_a_bad_checksum_is_a_502_invalid_provider_response()
    {
        Upstream.RawStream = answer =>
        {
            var frames = FakeBedrockUpstream.Events(answer).ToList();
            frames[1][^1] ^= 0xFF;
            return frames;
        };
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), Request(stream: true), Ct)));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("invalid_provider_response", error.Error.Error.Code);
        Assert.Contains("checksum", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Streaming_through_the_gateway_answers_openai_sse()
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "bedrock/" + Model, ["messages"] = Messages(User("hello world")), ["stream"] = true };

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var contents = text.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal))
            .Select(l => JsonNode.Parse(l[6..])!["choices"]?.AsArray().FirstOrDefault()?["delta"]?["content"]?.GetValue<string>());
        Assert.Equal("echo: hello world", string.Concat(contents));
        Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
    }
}
