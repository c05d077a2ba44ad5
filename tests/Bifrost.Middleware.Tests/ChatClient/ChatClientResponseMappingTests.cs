using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>How an IChatClient's <see cref="ChatResponse"/> comes back as a <c>chat.completion</c> over HTTP.</summary>
public sealed class ChatClientResponseMappingTests
{
    private const string Ask = """{"model":"mea/gpt-test","messages":[{"role":"user","content":"hi"}]}""";

    [Fact]
    public async Task Text_id_model_created_finish_reason_and_usage_with_cached_and_reasoning_tokens()
    {
        var chat = new FakeChatClient
        {
            OnResponse = _ => Task.FromResult(new ChatResponse(new AI.ChatMessage(ChatRole.Assistant, [new TextContent("Hello "), new TextContent("there")]))
            {
                ResponseId = "resp-42",
                ModelId = "gpt-test-2025",
                CreatedAt = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
                FinishReason = ChatFinishReason.Length,
                Usage = new UsageDetails { InputTokenCount = 11, OutputTokenCount = 7, TotalTokenCount = 18, CachedInputTokenCount = 4, ReasoningTokenCount = 3 },
            }),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("resp-42", body.GetProperty("id").GetString());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.Equal("gpt-test-2025", body.GetProperty("model").GetString());
        Assert.Equal(1_700_000_000, body.GetProperty("created").GetInt64());
        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("Hello there", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var usage = body.GetProperty("usage");
        Assert.Equal(11, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(7, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(18, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(4, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(3, usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.Equal("mea", body.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    [Fact]
    public async Task Without_id_model_usage_or_finish_reason_the_gateway_fills_in()
    {
        var chat = new FakeChatClient(); // answers "hello" and nothing else
        await using var host = await BridgeHost.StartAsync(chat);

        var (_, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.StartsWith("chatcmpl-", body.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("gpt-test", body.GetProperty("model").GetString());
        Assert.True(body.GetProperty("created").GetInt64() > 1_600_000_000);
        Assert.Equal("stop", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("hello", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.False(body.TryGetProperty("usage", out _));
    }

    [Fact]
    public async Task Tool_calls_come_back_with_json_arguments_and_tool_calls_finish_reason()
    {
        var chat = new FakeChatClient
        {
            OnResponse = _ => Task.FromResult(new ChatResponse(new AI.ChatMessage(ChatRole.Assistant,
            [
                new FunctionCallContent("call_a", "get_weather", new Dictionary<string, object?> { ["city"] = "Paris", ["days"] = 2, ["hourly"] = true }),
                new FunctionCallContent("call_b", "get_time", null),
            ]))),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var (_, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        var choice = body.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
        var calls = message.GetProperty("tool_calls").EnumerateArray().ToList();
        Assert.Equal(2, calls.Count);
        Assert.Equal("call_a", calls[0].GetProperty("id").GetString());
        Assert.Equal("function", calls[0].GetProperty("type").GetString());
        Assert.Equal("get_weather", calls[0].GetProperty("function").GetProperty("name").GetString());
        using var arguments = JsonDocument.Parse(calls[0].GetProperty("function").GetProperty("arguments").GetString()!);
        Assert.Equal("Paris", arguments.RootElement.GetProperty("city").GetString());
        Assert.Equal(2, arguments.RootElement.GetProperty("days").GetInt32());
        Assert.True(arguments.RootElement.GetProperty("hourly").GetBoolean());
        Assert.Equal("{}", calls[1].GetProperty("function").GetProperty("arguments").GetString());
        Assert.False(calls[0].TryGetProperty("index", out _));
    }

    [Fact]
    public async Task Calls_the_client_already_ran_are_not_reported_and_only_the_final_answer_is_the_content()
    {
        // What UseFunctionInvocation() returns: the call, its result, then the answer.
        var chat = new FakeChatClient
        {
            OnResponse = _ => Task.FromResult(new ChatResponse(
            [
                new AI.ChatMessage(ChatRole.Assistant, [new TextContent("Let me check. "), new FunctionCallContent("call_1", "get_weather", new Dictionary<string, object?> { ["city"] = "Oslo" })]),
                new AI.ChatMessage(ChatRole.Tool, [new FunctionResultContent("call_1", "snow")]),
                new AI.ChatMessage(ChatRole.Assistant, "It is snowing in Oslo."),
            ])
            {
                FinishReason = ChatFinishReason.Stop,
            }),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var (_, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        var choice = body.GetProperty("choices")[0];
        Assert.Equal("It is snowing in Oslo.", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.False(choice.GetProperty("message").TryGetProperty("tool_calls", out _));
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Several_assistant_messages_merge_and_reasoning_and_refusal_have_their_fields()
    {
        var chat = new FakeChatClient
        {
            OnResponse = _ => Task.FromResult(new ChatResponse(
            [
                new AI.ChatMessage(ChatRole.Assistant, [new TextReasoningContent("Thinking about it. ")]),
                new AI.ChatMessage(ChatRole.Assistant, [new TextReasoningContent("Done."), new TextContent("I cannot do that.")]),
                new AI.ChatMessage(ChatRole.Assistant, [new ErrorContent("Not allowed.") { ErrorCode = "Refusal" }]),
            ])
            {
                FinishReason = ChatFinishReason.ContentFilter,
            }),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var (_, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        var choice = body.GetProperty("choices")[0];
        var message = choice.GetProperty("message");
        Assert.Equal("I cannot do that.", message.GetProperty("content").GetString());
        Assert.Equal("Thinking about it. Done.", message.GetProperty("reasoning").GetString());
        Assert.Equal("Not allowed.", message.GetProperty("refusal").GetString());
        Assert.Equal("content_filter", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task A_finish_reason_the_abstraction_does_not_name_passes_through()
    {
        var chat = new FakeChatClient
        {
            OnResponse = _ => Task.FromResult(new ChatResponse(new AI.ChatMessage(ChatRole.Assistant, "x")) { FinishReason = new ChatFinishReason("pause_turn") }),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var (_, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.Equal("pause_turn", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }
}
