using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>ChatResponseUpdates become chat.completion.chunk events in OpenAI's order.</summary>
public sealed class ChatClientStreamingTests
{
    private const string StreamWithUsage = """{"model":"mea/gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}""";
    private const string Stream = """{"model":"mea/gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}""";

    [Fact]
    public async Task Role_first_then_text_then_tool_calls_then_finish_reason_then_usage()
    {
        var chat = new FakeChatClient
        {
            OnStream = call => FakeChatClient.Updates(
                call.Token,
                new ChatResponseUpdate(ChatRole.Assistant, "Hel") { ResponseId = "resp-s", ModelId = "gpt-test-2025", CreatedAt = DateTimeOffset.FromUnixTimeSeconds(1_700_000_001) },
                new ChatResponseUpdate(null, [new TextReasoningContent("hmm")]),
                new ChatResponseUpdate(null, "lo"),
                new ChatResponseUpdate(null, [new FunctionCallContent("call_1", "lookup", new Dictionary<string, object?> { ["q"] = "x" })]),
                new ChatResponseUpdate(null, [new FunctionCallContent("call_2", "lookup", new Dictionary<string, object?> { ["q"] = "y" })]) { FinishReason = ChatFinishReason.ToolCalls },
                new ChatResponseUpdate(null, [new UsageContent(new UsageDetails { InputTokenCount = 9, OutputTokenCount = 5, TotalTokenCount = 14, CachedInputTokenCount = 2 })])),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var events = await BridgeHost.PostStreamAsync(host, StreamWithUsage);

        Assert.Equal(Sse.Done, events[^1]);
        var chunks = events[..^1].Select(Sse.Json).ToList();
        Assert.Equal(8, chunks.Count);
        Assert.All(chunks, c => Assert.Equal("resp-s", c.GetProperty("id").GetString()));
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.All(chunks, c => Assert.Equal("gpt-test-2025", c.GetProperty("model").GetString()));
        Assert.All(chunks, c => Assert.Equal(1_700_000_001, c.GetProperty("created").GetInt64()));
        Assert.Equal(Enumerable.Range(0, 8), chunks.Select(c => c.GetProperty("extra_fields").GetProperty("chunk_index").GetInt32()));

        var deltas = chunks.Take(7).Select(c => c.GetProperty("choices")[0]).ToList();
        Assert.Equal("assistant", deltas[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("Hel", deltas[1].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("hmm", deltas[2].GetProperty("delta").GetProperty("reasoning").GetString());
        Assert.Equal("lo", deltas[3].GetProperty("delta").GetProperty("content").GetString());
        for (var i = 0; i < 2; i++)
        {
            var call = Assert.Single(deltas[4 + i].GetProperty("delta").GetProperty("tool_calls").EnumerateArray());
            Assert.Equal(i, call.GetProperty("index").GetInt32());
            Assert.Equal($"call_{i + 1}", call.GetProperty("id").GetString());
            Assert.Equal("function", call.GetProperty("type").GetString());
            Assert.Equal("lookup", call.GetProperty("function").GetProperty("name").GetString());
            Assert.Equal(i == 0 ? """{"q":"x"}""" : """{"q":"y"}""", call.GetProperty("function").GetProperty("arguments").GetString());
        }

        Assert.All(deltas.Take(6), d => Assert.Equal(JsonValueKind.Null, d.GetProperty("finish_reason").ValueKind));
        Assert.Equal("tool_calls", deltas[6].GetProperty("finish_reason").GetString());
        Assert.Empty(chunks[7].GetProperty("choices").EnumerateArray());
        var usage = chunks[7].GetProperty("usage");
        Assert.Equal(9, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(5, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(14, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(2, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.True(Assert.Single(chat.Calls).Streaming);
    }

    [Fact]
    public async Task Without_include_usage_there_is_no_usage_chunk_and_the_default_finish_reason_is_stop()
    {
        var chat = new FakeChatClient
        {
            OnStream = call => FakeChatClient.Updates(
                call.Token,
                new ChatResponseUpdate(ChatRole.Assistant, "one"),
                new ChatResponseUpdate(null, [new UsageContent(new UsageDetails { InputTokenCount = 1, OutputTokenCount = 1 })])),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var events = await BridgeHost.PostStreamAsync(host, Stream);

        var chunks = events[..^1].Select(Sse.Json).ToList();
        Assert.Equal(3, chunks.Count);
        Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out _)));
        Assert.StartsWith("chatcmpl-", chunks[0].GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("gpt-test", chunks[0].GetProperty("model").GetString());
        Assert.Equal("one", chunks[1].GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("stop", chunks[2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Usage_of_several_turns_adds_up()
    {
        var chat = new FakeChatClient
        {
            OnStream = call => FakeChatClient.Updates(
                call.Token,
                new ChatResponseUpdate(ChatRole.Assistant, [new FunctionCallContent("call_1", "f", null)]) { FinishReason = ChatFinishReason.ToolCalls },
                new ChatResponseUpdate(null, [new UsageContent(new UsageDetails { InputTokenCount = 10, OutputTokenCount = 2, TotalTokenCount = 12 })]),
                new ChatResponseUpdate(ChatRole.Tool, [new FunctionResultContent("call_1", "42")]),
                new ChatResponseUpdate(ChatRole.Assistant, "The answer is 42.") { FinishReason = ChatFinishReason.Stop },
                new ChatResponseUpdate(null, [new UsageContent(new UsageDetails { InputTokenCount = 20, OutputTokenCount = 5, TotalTokenCount = 25 })])),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var events = await BridgeHost.PostStreamAsync(host, StreamWithUsage);

        // The client ran the tool itself (UseFunctionInvocation): its call is not reported, its result is not text.
        var chunks = events[..^1].Select(Sse.Json).ToList();
        Assert.DoesNotContain(chunks, c => c.GetProperty("choices").EnumerateArray().Any(ch => ch.GetProperty("delta").TryGetProperty("tool_calls", out _)));
        var text = string.Concat(chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray())
            .Select(ch => ch.GetProperty("delta").TryGetProperty("content", out var content) ? content.GetString() : null));
        Assert.Equal("The answer is 42.", text);
        Assert.Equal("stop", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(37, chunks[^1].GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(30, chunks[^1].GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task An_empty_stream_is_still_a_role_chunk_and_a_finish_chunk()
    {
        var chat = new FakeChatClient { OnStream = call => FakeChatClient.Updates(call.Token) };
        await using var host = await BridgeHost.StartAsync(chat);

        var events = await BridgeHost.PostStreamAsync(host, Stream);

        var chunks = events[..^1].Select(Sse.Json).ToList();
        Assert.Equal(2, chunks.Count);
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("stop", chunks[1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task A_failure_before_the_first_update_is_a_plain_error_answer()
    {
        var chat = new FakeChatClient
        {
            OnStream = call => FakeChatClient.Throwing(new HttpRequestException("quota exceeded", null, HttpStatusCode.TooManyRequests), call.Token),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Stream);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.False(body.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal("quota exceeded", body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("rate_limit_error", body.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_failure_after_the_first_update_ends_the_stream_with_one_error_event()
    {
        var chat = new FakeChatClient { OnStream = call => FailingAfterOne(call.Token) };
        await using var host = await BridgeHost.StartAsync(chat);

        var events = await BridgeHost.PostStreamAsync(host, Stream);

        var chunks = events.Select(Sse.Json).ToList();
        Assert.Equal(3, chunks.Count); // role, "partial", error (no [DONE])
        Assert.Equal("partial", chunks[1].GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        var error = chunks[2];
        Assert.False(error.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(502, error.GetProperty("status_code").GetInt32());
        Assert.Contains("connection reset by the model", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> FailingAfterOne([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        yield return new ChatResponseUpdate(ChatRole.Assistant, "partial");
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        throw new InvalidOperationException("connection reset by the model");
    }
}
