using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Gemini;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary><c>streamGenerateContent?alt=sse</c> → chat completion chunks, against the fake's documented event sequence.</summary>
public sealed class GeminiStreamingTests : GeminiTestBase
{
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
        Adapter = _services.GetRequiredService<GeminiAdapter>();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await base.DisposeAsync();
    }

    private static ChatCompletionRequest Streamed(bool includeUsage = true) =>
        Chat($$$"""{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hello world"}],"stream":true,"stream_options":{"include_usage":{{{(includeUsage ? "true" : "false")}}}}}""");

    [Fact]
    public async Task Text_streams_as_content_deltas_then_one_finish_then_the_last_cumulative_usage()
    {
        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(), Ct));

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-2.5-flash:streamGenerateContent", sent.Path);
        Assert.Equal("?alt=sse", sent.Query);
        Assert.Equal("text/event-stream", sent.Headers["accept"]);
        Assert.Equal(FakeGeminiUpstream.Key, sent.Headers["x-goog-api-key"]);
        Assert.Equal("""{"contents":[{"role":"user","parts":[{"text":"Hello world"}]}],"generationConfig":{}}""", Sent(sent).ToJsonString());

        Assert.All(chunks, c => Assert.Equal("resp_fake_1", c.Id));
        Assert.Equal("assistant", chunks[0].Choices[0].Delta.Role);
        Assert.Equal(["echo:", " Hello", " world"], chunks.Skip(1).Take(3).Select(c => c.Choices[0].Delta.Content!));
        Assert.Equal("stop", chunks[4].Choices[0].FinishReason);
        Assert.Null(chunks[4].Choices[0].Delta.Content);
        var usage = chunks[5];
        Assert.Empty(usage.Choices);
        Assert.Equal(12, usage.Usage!.PromptTokens); // the last event's counts, not a sum over events
        Assert.Equal(9, usage.Usage.CompletionTokens);
        Assert.Equal(21, usage.Usage.TotalTokens);
        Assert.Equal(6, chunks.Count);
    }

    [Fact]
    public async Task Without_include_usage_the_finish_chunk_is_last()
    {
        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(includeUsage: false), Ct));

        Assert.Equal("stop", chunks[^1].Choices[0].FinishReason);
        Assert.All(chunks, c => Assert.Null(c.Usage));
    }

    [Fact]
    public async Task A_function_call_arrives_whole_as_one_tool_call_delta_and_finishes_with_tool_calls()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(
            FakeGeminiUpstream.Text("Checking."),
            new JsonObject { ["functionCall"] = new JsonObject { ["id"] = "fc_1", ["name"] = "lookup", ["args"] = new JsonObject { ["q"] = "x" } }, ["thoughtSignature"] = "c2ln" }));

        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(includeUsage: false), Ct));

        var call = Assert.Single(chunks.SelectMany(c => c.Choices).SelectMany(c => c.Delta.ToolCalls ?? []));
        Assert.Equal(0, call.Index);
        Assert.Equal("fc_1", call.Id);
        Assert.Equal("lookup", call.Function!.Name);
        Assert.Equal("""{"q":"x"}""", call.Function.Arguments);
        Assert.Equal("""{"google":{"thought_signature":"c2ln"}}""", call.AdditionalProperties!["extra_content"].GetRawText());
        Assert.Equal("tool_calls", chunks[^1].Choices[0].FinishReason);
    }

    [Fact]
    public async Task Thought_parts_stream_as_reasoning_deltas()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(new JsonObject { ["text"] = "Hmm", ["thought"] = true }, FakeGeminiUpstream.Text("Yes")), thoughts: 4);

        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(), Ct));

        Assert.Equal("Hmm", chunks[1].Choices[0].Delta.AdditionalProperties!["reasoning"].GetString());
        Assert.Null(chunks[1].Choices[0].Delta.Content);
        Assert.Equal("Yes", chunks[2].Choices[0].Delta.Content);
        Assert.Equal(13, chunks[^1].Usage!.CompletionTokens);
        Assert.Equal("""{"reasoning_tokens":4}""", chunks[^1].Usage!.CompletionTokensDetails!.Value.GetRawText());
    }

    [Fact]
    public async Task A_safety_stop_in_the_stream_is_content_filter()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("Well")), finishReason: "SAFETY");

        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(includeUsage: false), Ct));

        Assert.Equal("content_filter", chunks[^1].Choices[0].FinishReason);
    }

    [Fact]
    public async Task An_error_event_after_the_first_chunk_is_thrown_with_its_status()
    {
        Upstream.RawStream = response =>
        [
            .. FakeGeminiUpstream.Events(response).Take(1),
            FakeGeminiUpstream.Sse(FakeGeminiUpstream.Error(503, "The model is overloaded. Please try again later.")),
        ];
        var received = new List<ChatCompletionChunk>();

        var error = await Assert.ThrowsAsync<BifrostException>(async () =>
        {
            await foreach (var chunk in Adapter.StreamChatCompletionAsync(Context(), Streamed(), Ct))
            {
                received.Add(chunk);
            }
        });

        Assert.Equal(2, received.Count); // the role chunk and "echo:"
        Assert.Equal("echo:", received[1].Choices[0].Delta.Content);
        Assert.Equal(503, error.StatusCode);
        Assert.Equal("UNAVAILABLE", error.Error.Error.Code);
        Assert.Equal("The model is overloaded. Please try again later.", error.Error.Error.Message);
    }

    [Fact]
    public async Task A_stream_that_ends_without_a_finish_reason_is_a_502_incomplete_stream()
    {
        Upstream.RawStream = response => FakeGeminiUpstream.Events(response).Take(2);

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(), Ct)));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("incomplete_stream", error.Error.Error.Code);
    }

    [Fact]
    public async Task A_blocked_prompt_in_a_stream_finishes_with_content_filter()
    {
        Upstream.RawStream = _ => [FakeGeminiUpstream.Sse(new JsonObject { ["promptFeedback"] = new JsonObject { ["blockReason"] = "PROHIBITED_CONTENT" }, ["usageMetadata"] = new JsonObject { ["promptTokenCount"] = 5 } })];

        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(), Ct));

        Assert.Equal(3, chunks.Count);
        Assert.Equal("assistant", chunks[0].Choices[0].Delta.Role);
        Assert.Equal("content_filter", chunks[1].Choices[0].FinishReason);
        Assert.Equal(5, chunks[2].Usage!.PromptTokens);
    }

    [Fact]
    public async Task An_error_before_the_first_chunk_is_the_provider_error()
    {
        Upstream.Failures.Enqueue(new FakeGeminiUpstream.Failure(429, "Quota exceeded.", null, TimeSpan.FromSeconds(3)));

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Streamed(), Ct)));

        Assert.Equal(429, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(3), error.RetryAfter);
    }
}
