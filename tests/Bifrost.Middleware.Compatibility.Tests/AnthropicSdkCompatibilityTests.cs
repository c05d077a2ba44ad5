using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Exceptions;
using Anthropic.Models.Messages;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>
/// The official Anthropic .NET SDK pointed at <c>MapBifrostAnthropic("/anthropic")</c>: text, system prompts, tools
/// (tool_use → tool_result), images, stop sequences, streaming, count_tokens and errors, on the local provider and on a
/// recording adapter (what reaches the provider is asserted as the gateway's chat request).
/// </summary>
public sealed class AnthropicSdkCompatibilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_text_message_through_the_local_provider()
    {
        await using var host = await AnthropicSdkHost.StartAsync();
        MessageCreateParams parameters = new()
        {
            MaxTokens = 64,
            Messages = [new UserMessageParam("Hello there friend")],
            Model = "local/echo",
        };

        var message = await host.Client.Messages.Create(parameters, Ct);

        message.Validate(); // every field the SDK knows has the shape it expects
        Assert.StartsWith("msg_", message.ID, StringComparison.Ordinal);
        Assert.True(Assert.Single(message.Content).TryPickText(out var text));
        Assert.Equal("Hello there friend", text.Text);
        Assert.Equal("end_turn", message.RawData["stop_reason"].GetString());
        Assert.True(message.Usage.InputTokens > 0);
        Assert.Equal(3, message.Usage.OutputTokens); // the local provider's tokens: one per word piece
    }

    [Fact]
    public async Task System_sampling_stop_sequences_and_metadata_reach_the_provider_and_the_matched_sequence_comes_back()
    {
        await using var host = await AnthropicSdkHost.StartAsync();
        var adapter = host.Services.GetRequiredService<RecordingAdapter>();

        var message = await host.Client.Messages.Create(Params("""
            {"model":"acme/model-1","max_tokens":50,"system":"Be brief.","stop_sequences":["END","STOP"],"temperature":0.25,"top_p":0.9,"top_k":7,
             "metadata":{"user_id":"user-3"},"messages":[{"role":"user","content":"Say something then END"}]}
            """), Ct);

        var request = Assert.Single(adapter.Requests);
        Assert.Equal("model-1", request.Model);
        Assert.Equal(50, request.MaxTokens);
        Assert.Equal("system", request.Messages![0].Role);
        Assert.Equal("Be brief.", request.Messages[0].Content!.GetText());
        Assert.Equal("Say something then END", request.Messages[1].Content!.GetText());
        Assert.Equal(["END", "STOP"], request.Stop!);
        Assert.Equal(0.25, request.Temperature!.Value, 6);
        Assert.Equal(0.9, request.TopP!.Value, 6);
        Assert.Equal(7, request.AdditionalProperties!["top_k"].GetInt32());
        Assert.Equal("user-3", request.User);

        message.Validate();
        Assert.Equal("stop_sequence", message.RawData["stop_reason"].GetString());
        Assert.Equal("END", message.RawData["stop_sequence"].GetString());
        Assert.Equal(16, message.Usage.InputTokens); // prompt 20 minus 4 cached
        Assert.Equal(4, message.Usage.CacheReadInputTokens);
        Assert.Equal(5, message.Usage.OutputTokens);
    }

    [Fact]
    public async Task A_tool_use_and_its_tool_result_round_trip()
    {
        await using var host = await AnthropicSdkHost.StartAsync();
        var adapter = host.Services.GetRequiredService<RecordingAdapter>();
        const string Tools = """[{"name":"get_weather","description":"Gets the weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]""";

        var first = await host.Client.Messages.Create(Params($$"""
            {"model":"acme/model-1","max_tokens":50,"tools":{{Tools}},"tool_choice":{"type":"tool","name":"get_weather"},
             "messages":[{"role":"user","content":"Weather in Oslo?"}]}
            """), Ct);

        first.Validate();
        Assert.Equal("tool_use", first.RawData["stop_reason"].GetString());
        Assert.True(Assert.Single(first.Content).TryPickToolUse(out var call));
        Assert.Equal("call_7", call.ID);
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("Oslo", call.Input["city"].GetString());
        var sent = adapter.Requests.Single();
        var tool = Assert.Single(sent.Tools!);
        Assert.Equal("get_weather", tool.Function!.Name);
        Assert.Equal("Gets the weather", tool.Function.Description);
        Assert.Equal("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""", tool.Function.Parameters!.Value.GetRawText());
        Assert.Equal("""{"type":"function","function":{"name":"get_weather"}}""", sent.ToolChoice!.Value.GetRawText());

        var second = await host.Client.Messages.Create(Params($$"""
            {"model":"acme/model-1","max_tokens":50,"tools":{{Tools}},
             "messages":[{"role":"user","content":"Weather in Oslo?"},
               {"role":"assistant","content":[{"type":"tool_use","id":"{{call.ID}}","name":"get_weather","input":{"city":"Oslo"} } ] },
               {"role":"user","content":[{"type":"tool_result","tool_use_id":"{{call.ID}}","content":"sunny, 21 C"}]}]}
            """), Ct);

        var followUp = adapter.Requests.Last();
        Assert.Equal(["user", "assistant", "tool"], followUp.Messages!.Select(m => m.Role));
        var assistant = followUp.Messages![1];
        Assert.Null(assistant.Content);
        var toolCall = Assert.Single(assistant.ToolCalls!);
        Assert.Equal("call_7", toolCall.Id);
        Assert.Equal("get_weather", toolCall.Function!.Name);
        Assert.Equal("""{"city":"Oslo"}""", toolCall.Function.Arguments);
        Assert.Equal("call_7", followUp.Messages[2].ToolCallId);
        Assert.Equal("sunny, 21 C", followUp.Messages[2].Content!.GetText());
        Assert.True(Assert.Single(second.Content).TryPickText(out var answer));
        Assert.Equal("It is sunny, 21 C.", answer.Text);
        Assert.Equal("end_turn", second.RawData["stop_reason"].GetString());
    }

    [Fact]
    public async Task An_image_block_reaches_the_provider_as_an_image_part()
    {
        await using var host = await AnthropicSdkHost.StartAsync();
        var adapter = host.Services.GetRequiredService<RecordingAdapter>();

        await host.Client.Messages.Create(Params("""
            {"model":"acme/model-1","max_tokens":50,"messages":[{"role":"user","content":[
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
              {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
              {"type":"text","text":"What are these?"}]}]}
            """), Ct);

        var parts = Assert.Single(adapter.Requests).Messages!.Single().Content!.Parts!;
        Assert.Equal(["image_url", "image_url", "text"], parts.Select(p => p.Type));
        Assert.Equal("data:image/png;base64,iVBORw0KGgo=", parts[0].ImageUrl!.Url);
        Assert.Equal("https://example.com/cat.jpg", parts[1].ImageUrl!.Url);
        Assert.Equal("What are these?", parts[2].Text);
    }

    [Fact]
    public async Task Streaming_text_with_the_SDKs_streaming_API()
    {
        await using var host = await AnthropicSdkHost.StartAsync();
        MessageCreateParams parameters = new()
        {
            MaxTokens = 64,
            Messages = [new UserMessageParam("Stream these words back")],
            Model = "local/echo",
        };

        var text = new StringBuilder();
        var kinds = new List<string>();
        RawMessageDeltaEvent? end = null;
        await foreach (var item in host.Client.Messages.CreateStreaming(parameters, Ct))
        {
            item.Validate();
            if (item.TryPickStart(out var start))
            {
                kinds.Add("start");
                Assert.StartsWith("msg_", start.Message.ID, StringComparison.Ordinal);
            }
            else if (item.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var piece))
            {
                kinds.Add("delta");
                text.Append(piece.Text);
            }
            else if (item.TryPickDelta(out var messageDelta))
            {
                kinds.Add("message_delta");
                end = messageDelta;
            }
            else if (item.TryPickStop(out _))
            {
                kinds.Add("stop");
            }
        }

        Assert.Equal("Stream these words back", text.ToString());
        Assert.Equal("start", kinds[0]);
        Assert.Equal(["message_delta", "stop"], kinds[^2..]);
        Assert.True(kinds.Count(k => k == "delta") > 1);
        Assert.NotNull(end);
        Assert.Equal("end_turn", end.RawData["delta"].GetProperty("stop_reason").GetString());
        Assert.Equal(4, end.Usage.OutputTokens);
    }

    [Fact]
    public async Task Streaming_a_tool_use_gives_the_input_as_json_deltas()
    {
        await using var host = await AnthropicSdkHost.StartAsync();

        var json = new StringBuilder();
        string? toolName = null;
        string? stopReason = null;
        await foreach (var item in host.Client.Messages.CreateStreaming(Params("""
            {"model":"acme/model-1","max_tokens":50,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],
             "messages":[{"role":"user","content":"Weather in Oslo?"}]}
            """), Ct))
        {
            item.Validate();
            if (item.TryPickContentBlockStart(out var blockStart) && blockStart.ContentBlock.TryPickToolUse(out var toolUse))
            {
                toolName = toolUse.Name;
            }
            else if (item.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickInputJson(out var partial))
            {
                json.Append(partial.PartialJson);
            }
            else if (item.TryPickDelta(out var messageDelta))
            {
                stopReason = messageDelta.RawData["delta"].GetProperty("stop_reason").GetString();
            }
        }

        Assert.Equal("get_weather", toolName);
        Assert.Equal("""{"city":"Oslo"}""", json.ToString());
        Assert.Equal("tool_use", stopReason);
    }

    [Fact]
    public async Task Count_tokens_answers_the_gateways_count()
    {
        await using var host = await AnthropicSdkHost.StartAsync();

        var counted = await host.Client.Messages.CountTokens(MessageCountTokensParams.FromRawUnchecked(
            Raw("{}"), Raw("{}"), Raw("""{"model":"local/echo","system":"Be brief.","messages":[{"role":"user","content":"Count these five words please"}]}""")), Ct);
        using var own = await host.Http.PostAsync(
            "/openai/v1/responses/input_tokens",
            new StringContent("""{"model":"local/echo","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Count these five words please"}]}""", Encoding.UTF8, "application/json"),
            Ct);
        var expected = JsonDocument.Parse(await own.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("input_tokens").GetInt32();

        Assert.True(expected > 0);
        Assert.Equal(expected, counted.InputTokens);
    }

    [Fact]
    public async Task A_refused_request_is_the_SDKs_bad_request_exception_with_Anthropics_error()
    {
        await using var host = await AnthropicSdkHost.StartAsync();

        var error = await Assert.ThrowsAsync<AnthropicBadRequestException>(() => host.Client.Messages.Create(Params("""
            {"model":"local/echo","max_tokens":10,"messages":[{"role":"user","content":[{"type":"server_tool_use","id":"x","name":"web_search","input":{}}]}]}
            """), Ct));

        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.Contains("invalid_request_error", error.Message, StringComparison.Ordinal);
        Assert.Contains("server_tool_use", error.Message, StringComparison.Ordinal);
    }

    private static MessageCreateParams Params(string body) => MessageCreateParams.FromRawUnchecked(Raw("{}"), Raw("{}"), Raw(body));

    private static Dictionary<string, JsonElement> Raw(string json) =>
        JsonDocument.Parse(json).RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());

    /// <summary>The gateway on a TestServer with the local provider (default) and the recording adapter as <c>acme</c>, and the Anthropic SDK pointed at <c>/anthropic</c>.</summary>
    private sealed class AnthropicSdkHost : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private AnthropicSdkHost(WebApplication app)
        {
            _app = app;
            var server = app.GetTestServer();
            Http = server.CreateClient();
            Client = new AnthropicClient
            {
                HttpClient = Http,
                BaseUrl = new Uri(server.BaseAddress, "/anthropic").ToString(),
                ApiKey = "sk-ant-anything",
                MaxRetries = 0,
            };
        }

        public HttpClient Http { get; }

        public AnthropicClient Client { get; }

        public IServiceProvider Services => _app.Services;

        public static async Task<AnthropicSdkHost> StartAsync()
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
            builder.WebHost.UseTestServer();
            builder.Logging.ClearProviders();
            builder.Services.AddBifrost(options =>
            {
                options.DefaultProvider = "local";
                options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"], MaxRetries = 0 };
            }).AddProvider<RecordingAdapter>("acme");
            var app = builder.Build();
            app.MapBifrost("/openai");
            app.MapBifrostAnthropic("/anthropic");
            await app.StartAsync();
            return new AnthropicSdkHost(app);
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    /// <summary>
    /// Records each chat request; answers a call to <c>get_weather</c> (city Oslo) while the conversation has tools and no tool
    /// result yet, else text — and, when the request has the stop sequence END, reports it matched (as vLLM's <c>stop_reason</c>).
    /// </summary>
    public sealed class RecordingAdapter : IProviderAdapter
    {
        public ConcurrentQueue<ChatCompletionRequest> Requests { get; } = new();

        public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            var choice = new ChatChoice { Index = 0, Message = new ChatResponseMessage(), FinishReason = "stop" };
            if (WantsTool(request))
            {
                choice.Message.ToolCalls = [new ChatCompletionToolCall { Id = "call_7", Type = "function", Function = new ChatCompletionFunctionCall { Name = "get_weather", Arguments = """{"city":"Oslo"}""" } }];
                choice.FinishReason = "tool_calls";
            }
            else if (request.Messages!.Any(m => m.Role == "tool"))
            {
                choice.Message.Content = "It is " + request.Messages!.Last(m => m.Role == "tool").Content!.GetText() + ".";
            }
            else
            {
                choice.Message.Content = "Something";
                if (request.Stop?.Contains("END") == true)
                {
                    choice.AdditionalProperties = new Dictionary<string, JsonElement> { ["stop_reason"] = JsonDocument.Parse("\"END\"").RootElement.Clone() };
                }
            }

            return Task.FromResult(new ChatCompletionResponse
            {
                Id = "chatcmpl-1",
                Model = context.Model,
                Choices = [choice],
                Usage = new ChatUsage { PromptTokens = 20, CompletionTokens = 5, TotalTokens = 25, PromptTokensDetails = JsonDocument.Parse("""{"cached_tokens":4}""").RootElement.Clone() },
            });
        }

        public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            await Task.Yield();
            ChatCompletionChunk Chunk(ChatDelta delta, string? finish = null) => new() { Id = "chatcmpl-2", Model = context.Model, Choices = [new ChatChunkChoice { Index = 0, Delta = delta, FinishReason = finish }] };
            yield return Chunk(new ChatDelta { Role = "assistant" });
            if (WantsTool(request))
            {
                yield return Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Id = "call_7", Type = "function", Function = new ChatCompletionFunctionCall { Name = "get_weather", Arguments = string.Empty } }] });
                yield return Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Function = new ChatCompletionFunctionCall { Arguments = """{"city":""" } }] });
                yield return Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Function = new ChatCompletionFunctionCall { Arguments = "\"Oslo\"}" } }] });
                yield return Chunk(new ChatDelta(), "tool_calls");
            }
            else
            {
                yield return Chunk(new ChatDelta { Content = "Some" });
                yield return Chunk(new ChatDelta { Content = "thing" });
                yield return Chunk(new ChatDelta(), "stop");
            }

            yield return new ChatCompletionChunk { Id = "chatcmpl-2", Model = context.Model, Usage = new ChatUsage { PromptTokens = 20, CompletionTokens = 5, TotalTokens = 25 } };
        }

        private static bool WantsTool(ChatCompletionRequest request) => request.Tools is { Count: > 0 } && request.Messages!.All(m => m.Role != "tool");
    }
}
