using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>Messages SSE events → chat completion chunks.</summary>
public sealed class AnthropicStreamingTests : AnthropicTestBase
{
    [Fact]
    public async Task Stream_events_become_chunks_role_first_then_reasoning_text_tool_call_finish_and_usage()
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(
            new JsonArray(
                new JsonObject { ["type"] = "thinking", ["thinking"] = "Think about it.", ["signature"] = "sig-7" },
                FakeAnthropicUpstream.TextBlock("Let me look that up."),
                new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_5", ["name"] = "lookup", ["input"] = new JsonObject { ["q"] = "bifrost", ["n"] = 3 } },
                new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_6", ["name"] = "other", ["input"] = new JsonObject() }),
            stopReason: "tool_use",
            input: 30,
            output: 44,
            cacheCreation: 2,
            cacheRead: 8);
        await using var host = await StartHostAsync();
        var request = new ChatCompletionRequest
        {
            Model = "claude-sonnet-4-5",
            Messages = [ChatCompletionMessage.FromText("user", "look up bifrost")],
            Stream = true,
            StreamOptions = new ChatStreamOptions { IncludeUsage = true },
        };

        var chunks = await CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), request, Ct));

        Assert.True(Upstream.MessageRequests.Single().Body!["stream"]!.GetValue<bool>());
        Assert.All(chunks, c => Assert.StartsWith("msg_fake_", c.Id, StringComparison.Ordinal));
        Assert.Equal("assistant", chunks[0].Choices[0].Delta.Role);
        Assert.Equal("Think about it.", string.Concat(chunks.Select(c => Extra(c, "reasoning")?.GetString())));
        var signed = chunks.Select(c => Extra(c, "reasoning_details")).Single(d => d is not null)!.Value[0];
        Assert.Equal("Think about it.", signed.GetProperty("text").GetString());
        Assert.Equal("sig-7", signed.GetProperty("signature").GetString());
        Assert.Equal("Let me look that up.", string.Concat(chunks.Select(c => c.Choices.FirstOrDefault()?.Delta.Content)));

        var calls = chunks.SelectMany(c => c.Choices).SelectMany(ch => ch.Delta.ToolCalls ?? []).ToList();
        var first = calls.Where(c => c.Index == 0).ToList();
        Assert.Equal("toolu_5", first[0].Id);
        Assert.Equal("function", first[0].Type);
        Assert.Equal("lookup", first[0].Function!.Name);
        Assert.All(first.Skip(1), c => Assert.Null(c.Id));
        Assert.Equal("""{"q":"bifrost","n":3}""", string.Concat(first.Select(c => c.Function!.Arguments)));
        var second = calls.Where(c => c.Index == 1).ToList();
        Assert.Equal("toolu_6", second[0].Id);
        Assert.Equal("{}", string.Concat(second.Select(c => c.Function!.Arguments)));

        var finishIndex = chunks.FindIndex(c => c.Choices.Any(ch => ch.FinishReason is not null));
        Assert.Equal(chunks.Count - 2, finishIndex);
        Assert.Equal("tool_calls", chunks[finishIndex].Choices[0].FinishReason);
        var usageChunk = chunks[^1];
        Assert.Empty(usageChunk.Choices);
        Assert.Equal(40, usageChunk.Usage!.PromptTokens);
        Assert.Equal(44, usageChunk.Usage.CompletionTokens);
        Assert.Equal(84, usageChunk.Usage.TotalTokens);
        Assert.Equal(8, usageChunk.Usage.PromptTokensDetails!.Value.GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task An_error_event_mid_stream_is_thrown_as_the_providers_error()
    {
        Upstream.RawStream = message =>
        [
            .. FakeAnthropicUpstream.Events(message).Take(4), // message_start, ping, content_block_start, first text delta
            FakeAnthropicUpstream.Sse(FakeAnthropicUpstream.Error("overloaded_error", "Overloaded")),
        ];
        await using var host = await StartHostAsync();
        var request = new ChatCompletionRequest { Model = "m", Messages = [ChatCompletionMessage.FromText("user", "hello there friend")], Stream = true };
        var received = new List<ChatCompletionChunk>();

        var error = await Assert.ThrowsAsync<BifrostException>(async () =>
        {
            await foreach (var chunk in Adapter(host).StreamChatCompletionAsync(Context(), request, Ct))
            {
                received.Add(chunk);
            }
        });

        Assert.Equal(529, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal("overloaded_error", error.Error.Error.Type);
        Assert.Equal("Overloaded", error.Message);
        Assert.Equal(2, received.Count);
    }

    [Fact]
    public async Task A_stream_cut_before_message_stop_is_an_error_not_a_silent_end()
    {
        Upstream.RawStream = message => FakeAnthropicUpstream.Events(message).SkipLast(2);
        await using var host = await StartHostAsync();
        var request = new ChatCompletionRequest { Model = "m", Messages = [ChatCompletionMessage.FromText("user", "hello")], Stream = true };

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), request, Ct)));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("incomplete_stream", error.Error.Error.Code);
    }

    [Fact]
    public async Task The_official_OpenAI_sdk_streams_text_and_tool_calls_from_Anthropic()
    {
        var turn = 0;
        Upstream.Respond = request => Interlocked.Increment(ref turn) == 1
            ? FakeAnthropicUpstream.Message(new JsonArray(new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_1", ["name"] = "get_weather", ["input"] = new JsonObject { ["city"] = "Paris" } }), "tool_use")
            : FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("It is sunny in Paris.")));
        await using var host = await StartHostAsync();
        var client = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.Server.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetChatClient("anthropic/claude-sonnet-4-5");
        var tool = global::OpenAI.Chat.ChatTool.CreateFunctionTool("get_weather", "Weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<global::OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("Weather in Paris?")];

        var ids = new Dictionary<int, string>();
        var names = new Dictionary<int, string>();
        var args = new Dictionary<int, StringBuilder>();
        ChatFinishReason? finish = null;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options, Ct))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                if (call.ToolCallId is not null)
                {
                    ids[call.Index] = call.ToolCallId;
                    names[call.Index] = call.FunctionName;
                }

                (args.TryGetValue(call.Index, out var sb) ? sb : args[call.Index] = new StringBuilder()).Append(call.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal("toolu_1", ids[0]);
        Assert.Equal("get_weather", names[0]);
        Assert.Equal("""{"city":"Paris"}""", args[0].ToString());

        messages.Add(new AssistantChatMessage([global::OpenAI.Chat.ChatToolCall.CreateFunctionToolCall(ids[0], names[0], BinaryData.FromString(args[0].ToString()))]));
        messages.Add(new ToolChatMessage(ids[0], "sunny"));
        var text = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options, Ct))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("It is sunny in Paris.", text.ToString());
        var second = Upstream.MessageRequests.Last().Body!["messages"]!;
        Assert.Equal("tool_use", second[1]!["content"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("toolu_1", second[2]!["content"]![0]!["tool_use_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Gateway_streams_anthropic_as_server_sent_events_ending_with_done()
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "anthropic/m", ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true }, ["messages"] = Messages(User("one two three")) };

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        var data = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        var chunks = data.SkipLast(1).Select(d => JsonDocument.Parse(d).RootElement).ToList();
        Assert.Equal("echo: one two three", string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : null)));
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(9, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    private static JsonElement? Extra(ChatCompletionChunk chunk, string name) =>
        chunk.Choices.FirstOrDefault()?.Delta.AdditionalProperties?.TryGetValue(name, out var value) == true ? value : null;
}
