using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using OpenAI.Chat;
using SdkChatResponseFormat = global::OpenAI.Chat.ChatResponseFormat;
using SdkChatTool = global::OpenAI.Chat.ChatTool;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>What the SDK sends for tools and structured outputs reaches a custom adapter intact, and tool calls come back.</summary>
public sealed class ToolsCompatibilityTests
{
    private const string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}""";
    private const string AnswerSchema = """{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"],"additionalProperties":false}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Tools_and_a_json_schema_response_format_reach_the_adapter_intact()
    {
        await using var host = await SdkHost.StartAsync(b => b.AddProvider<ToolAdapter>("acme"));
        var adapter = host.Services.GetRequiredService<ToolAdapter>();
        var options = new ChatCompletionOptions
        {
            Tools = { SdkChatTool.CreateFunctionTool("get_weather", "Gets the weather", BinaryData.FromString(WeatherSchema), functionSchemaIsStrict: true) },
            ToolChoice = ChatToolChoice.CreateAutoChoice(),
            ResponseFormat = SdkChatResponseFormat.CreateJsonSchemaFormat("answer", BinaryData.FromString(AnswerSchema), "The answer", jsonSchemaIsStrict: true),
            Temperature = 0.5f,
        };

        ChatCompletion completion = await host.Client.GetChatClient("acme/tool-model").CompleteChatAsync([new UserChatMessage("Weather in Oslo?")], options, Ct);

        var request = Assert.Single(adapter.Requests);
        Assert.Equal("tool-model", request.Model);
        var tool = Assert.Single(request.Tools!);
        Assert.Equal("function", tool.Type);
        Assert.Equal("get_weather", tool.Function!.Name);
        Assert.Equal("Gets the weather", tool.Function.Description);
        Assert.True(tool.Function.Strict);
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(WeatherSchema).RootElement, tool.Function.Parameters!.Value));
        Assert.Equal("auto", request.ToolChoice!.Value.GetString());
        Assert.Equal("json_schema", request.ResponseFormat!.Type);
        Assert.Equal("answer", request.ResponseFormat.JsonSchema!.Name);
        Assert.Equal("The answer", request.ResponseFormat.JsonSchema.Description);
        Assert.True(request.ResponseFormat.JsonSchema.Strict);
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(AnswerSchema).RootElement, request.ResponseFormat.JsonSchema.Schema!.Value));
        Assert.Equal(0.5, request.Temperature!.Value, 3);

        // The adapter's tool call reaches the SDK as a typed tool call.
        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("call_1", call.Id);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("Oslo", JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("city").GetString());
    }

    [Fact]
    public async Task A_tool_result_conversation_round_trips_through_the_SDK()
    {
        await using var host = await SdkHost.StartAsync(b => b.AddProvider<ToolAdapter>("acme"));
        var adapter = host.Services.GetRequiredService<ToolAdapter>();
        var chat = host.Client.GetChatClient("acme/tool-model");
        List<global::OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("Weather in Oslo?")];
        var options = new ChatCompletionOptions { Tools = { SdkChatTool.CreateFunctionTool("get_weather", "Gets the weather", BinaryData.FromString(WeatherSchema)) } };

        ChatCompletion first = await chat.CompleteChatAsync(messages, options, Ct);
        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(first.ToolCalls[0].Id, """{"temperature":"12C"}"""));
        ChatCompletion second = await chat.CompleteChatAsync(messages, options, Ct);

        Assert.Equal("It is 12C in Oslo.", second.Content[0].Text);
        var sent = adapter.Requests.Last().Messages!;
        Assert.Equal(["user", "assistant", "tool"], sent.Select(m => m.Role));
        var assistantCall = Assert.Single(sent[1].ToolCalls!);
        Assert.Equal("call_1", assistantCall.Id);
        Assert.Equal("get_weather", assistantCall.Function!.Name);
        Assert.Equal("call_1", sent[2].ToolCallId);
        Assert.Contains("12C", sent[2].Content!.GetText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Streamed_tool_call_deltas_are_assembled_by_the_SDK()
    {
        await using var host = await SdkHost.StartAsync(b => b.AddProvider<ToolAdapter>("acme"));
        var options = new ChatCompletionOptions { Tools = { SdkChatTool.CreateFunctionTool("get_weather", "Gets the weather", BinaryData.FromString(WeatherSchema)) } };

        var arguments = new System.Text.StringBuilder();
        string? name = null;
        ChatFinishReason? finish = null;
        await foreach (var update in host.Client.GetChatClient("acme/tool-model").CompleteChatStreamingAsync([new UserChatMessage("Weather in Oslo?")], options, Ct))
        {
            foreach (var toolUpdate in update.ToolCallUpdates)
            {
                name ??= toolUpdate.FunctionName;
                arguments.Append(toolUpdate.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal("get_weather", name);
        Assert.Equal("""{"city":"Oslo"}""", arguments.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
    }

    /// <summary>Answers the first turn with a get_weather call and a turn that has a tool result with text.</summary>
    public sealed class ToolAdapter : IProviderAdapter
    {
        public ConcurrentQueue<ChatCompletionRequest> Requests { get; } = new();

        public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            var answered = request.Messages!.Any(m => m.Role == "tool");
            var message = answered
                ? new ChatResponseMessage { Content = "It is 12C in Oslo." }
                : new ChatResponseMessage { ToolCalls = [new ChatCompletionToolCall { Id = "call_1", Type = "function", Function = new ChatCompletionFunctionCall { Name = "get_weather", Arguments = """{"city":"Oslo"}""" } }] };
            return Task.FromResult(new ChatCompletionResponse
            {
                Id = "chatcmpl-tools",
                Created = 1_700_000_000,
                Model = context.Model,
                Choices = [new ChatChoice { Index = 0, Message = message, FinishReason = answered ? "stop" : "tool_calls" }],
                Usage = new ChatUsage { PromptTokens = 10, CompletionTokens = 5, TotalTokens = 15 },
            });
        }

        public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            await Task.Yield();
            ChatCompletionChunk Chunk(ChatDelta delta, string? finish) => new()
            {
                Id = "chatcmpl-tools",
                Created = 1_700_000_000,
                Model = context.Model,
                Choices = [new ChatChunkChoice { Index = 0, Delta = delta, FinishReason = finish }],
            };

            yield return Chunk(new ChatDelta { Role = "assistant", ToolCalls = [new ChatCompletionToolCall { Index = 0, Id = "call_1", Type = "function", Function = new ChatCompletionFunctionCall { Name = "get_weather", Arguments = string.Empty } }] }, null);
            yield return Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Function = new ChatCompletionFunctionCall { Arguments = """{"city":""" } }] }, null);
            yield return Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Function = new ChatCompletionFunctionCall { Arguments = "\"Oslo\"}" } }] }, null);
            yield return Chunk(new ChatDelta(), "tool_calls");
            if (request.StreamOptions?.IncludeUsage == true)
            {
                yield return new ChatCompletionChunk { Id = "chatcmpl-tools", Created = 1_700_000_000, Model = context.Model, Usage = new ChatUsage { PromptTokens = 10, CompletionTokens = 5, TotalTokens = 15 } };
            }
        }
    }
}
