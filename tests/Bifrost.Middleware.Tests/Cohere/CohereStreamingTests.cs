using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>Cohere v2 chat SSE events → chat completion chunks.</summary>
public sealed class CohereStreamingTests : CohereTestBase
{
    [Fact]
    public async Task Stream_events_become_chunks_role_first_then_reasoning_text_tool_calls_finish_and_usage()
    {
        Upstream.Respond = _ => FakeCohereUpstream.Answer(
            new JsonArray(new JsonObject { ["type"] = "thinking", ["thinking"] = "Think first." }, FakeCohereUpstream.Text("Let me look.")),
            "TOOL_CALL",
            input: 30,
            output: 44,
            toolCalls: new JsonArray(FakeCohereUpstream.ToolCall("lookup_1", "lookup", """{"q":"bifrost","n":3}"""), FakeCohereUpstream.ToolCall("other_2", "other", "{}")),
            toolPlan: "Plan it.",
            cached: 8);
        await using var host = await StartHostAsync();
        var request = new ChatCompletionRequest
        {
            Model = "command-a-03-2025",
            Messages = [ChatCompletionMessage.FromText("user", "look up bifrost")],
            Stream = true,
            StreamOptions = new ChatStreamOptions { IncludeUsage = true },
        };

        var chunks = await CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), request, Ct));

        Assert.True(Upstream.ChatRequests.Single().Body!["stream"]!.GetValue<bool>());
        Assert.Equal("text/event-stream", Upstream.ChatRequests.Single().Headers["accept"]);
        Assert.All(chunks, c => Assert.StartsWith("chat_fake_", c.Id, StringComparison.Ordinal));
        Assert.Equal("assistant", chunks[0].Choices[0].Delta.Role);
        Assert.Equal("Plan it.Think first.", string.Concat(chunks.Select(c => Extra(c, "reasoning")?.GetString())));
        Assert.Equal("Let me look.", string.Concat(chunks.Select(c => c.Choices.FirstOrDefault()?.Delta.Content)));

        var calls = chunks.SelectMany(c => c.Choices).SelectMany(ch => ch.Delta.ToolCalls ?? []).ToList();
        var first = calls.Where(c => c.Index == 0).ToList();
        Assert.Equal("lookup_1", first[0].Id);
        Assert.Equal("lookup", first[0].Function!.Name);
        Assert.Equal("""{"q":"bifrost","n":3}""", string.Concat(first.Select(c => c.Function!.Arguments)));
        var second = calls.Where(c => c.Index == 1).ToList();
        Assert.Equal("other_2", second[0].Id);
        Assert.Equal("{}", string.Concat(second.Select(c => c.Function!.Arguments)));

        var finish = Assert.Single(chunks, c => c.Choices.Count > 0 && c.Choices[0].FinishReason is not null);
        Assert.Equal("tool_calls", finish.Choices[0].FinishReason);
        var usage = chunks[^1];
        Assert.Empty(usage.Choices);
        Assert.Equal(30, usage.Usage!.PromptTokens);
        Assert.Equal(44, usage.Usage.CompletionTokens);
        Assert.Equal(74, usage.Usage.TotalTokens);
        Assert.Equal(8, usage.Usage.PromptTokensDetails!.Value.GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task A_message_end_with_an_error_after_the_first_chunk_is_thrown_as_the_providers_error()
    {
        Upstream.RawStream = answer =>
        [
            .. FakeCohereUpstream.Events(answer["id"]!.GetValue<string>(), answer).Take(3), // message-start, content-start, first delta
            FakeCohereUpstream.Sse(new JsonObject { ["type"] = "message-end", ["delta"] = new JsonObject { ["finish_reason"] = "ERROR", ["error"] = "internal generation failure" } }),
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

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("provider_generation_error", error.Error.Error.Code);
        Assert.Equal("internal generation failure", error.Message);
        Assert.Equal(2, received.Count); // the role chunk and "echo:"
    }

    [Fact]
    public async Task A_stream_cut_before_message_end_is_an_error_not_a_silent_end()
    {
        Upstream.RawStream = answer => FakeCohereUpstream.Events(answer["id"]!.GetValue<string>(), answer).SkipLast(1);
        await using var host = await StartHostAsync();
        var request = new ChatCompletionRequest { Model = "m", Messages = [ChatCompletionMessage.FromText("user", "hello")], Stream = true };

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), request, Ct)));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("incomplete_stream", error.Error.Error.Code);
    }

    [Fact]
    public async Task Gateway_streams_cohere_as_server_sent_events_ending_with_done()
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "cohere/command-a-03-2025", ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true }, ["messages"] = Messages(User("one two three")) };

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        var data = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        var chunks = data.SkipLast(1).Select(d => JsonDocument.Parse(d).RootElement).ToList();
        Assert.Equal("echo: one two three", string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : null)));
        Assert.Equal("stop", chunks.Single(c => c.GetProperty("choices").GetArrayLength() > 0 && c.GetProperty("choices")[0].TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String).GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(9, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task An_error_after_the_first_chunk_reaches_the_client_as_an_sse_error_event()
    {
        Upstream.RawStream = answer =>
        [
            .. FakeCohereUpstream.Events(answer["id"]!.GetValue<string>(), answer).Take(3),
            FakeCohereUpstream.Sse(new JsonObject { ["type"] = "message-end", ["delta"] = new JsonObject { ["finish_reason"] = "ERROR", ["error"] = "generation failed upstream" } }),
        ];
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "cohere/command-a-03-2025", ["stream"] = true, ["messages"] = Messages(User("one two three")) };

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Contains("\"echo:\"", text, StringComparison.Ordinal);
        Assert.Contains("generation failed upstream", text, StringComparison.Ordinal);
        Assert.Contains("provider_generation_error", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_official_OpenAI_sdk_streams_text_and_tool_calls_from_Cohere_and_sends_the_tool_result_back()
    {
        var turn = 0;
        Upstream.Respond = request => Interlocked.Increment(ref turn) == 1
            ? FakeCohereUpstream.Answer([], "TOOL_CALL", toolCalls: new JsonArray(FakeCohereUpstream.ToolCall("get_weather_1", "get_weather", """{"city":"Paris"}""")), toolPlan: "I will check the weather.")
            : FakeCohereUpstream.Answer(new JsonArray(FakeCohereUpstream.Text("It is sunny in Paris.")));
        await using var host = await StartHostAsync();
        var client = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.Server.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetChatClient("cohere/command-a-03-2025");
        var tool = global::OpenAI.Chat.ChatTool.CreateFunctionTool("get_weather", "Weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<global::OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("Weather in Paris?")];

        string? id = null, name = null;
        var args = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options, Ct))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                Assert.Equal(0, call.Index);
                id ??= call.ToolCallId;
                name ??= call.FunctionName;
                args.Append(call.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal("get_weather_1", id);
        Assert.Equal("get_weather", name);
        Assert.Equal("""{"city":"Paris"}""", args.ToString());

        messages.Add(new AssistantChatMessage([global::OpenAI.Chat.ChatToolCall.CreateFunctionToolCall(id, name, BinaryData.FromString(args.ToString()))]));
        messages.Add(new ToolChatMessage(id, "sunny"));
        var text = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options, Ct))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("It is sunny in Paris.", text.ToString());
        var second = Upstream.ChatRequests.Last().Body!["messages"]!.AsArray();
        Assert.Equal(3, second.Count);
        Assert.Equal("get_weather_1", second[1]!["tool_calls"]![0]!["id"]!.GetValue<string>());
        Assert.Equal("""{"city":"Paris"}""", second[1]!["tool_calls"]![0]!["function"]!["arguments"]!.GetValue<string>());
        AssertJson("""{"role":"tool","content":"sunny","tool_call_id":"get_weather_1"}""", second[2]);
    }

    private static JsonElement? Extra(ChatCompletionChunk chunk, string name) =>
        chunk.Choices.FirstOrDefault()?.Delta.AdditionalProperties?.TryGetValue(name, out var value) == true ? value : null;
}
