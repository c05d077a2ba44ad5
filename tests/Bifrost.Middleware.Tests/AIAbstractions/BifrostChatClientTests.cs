using System.ComponentModel;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.AIAbstractions;

/// <summary>
/// <see cref="IBifrostClient"/> as an <see cref="IChatClient"/>, with the expectations of Microsoft.Extensions.AI's own
/// chat client integration tests: text, streaming, function invocation, structured output, usage, options, cancellation.
/// </summary>
public sealed class BifrostChatClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetResponseAsync_answers_with_text_ids_model_finish_reason_usage_and_the_raw_completion()
    {
        await using var services = AIHost.Build();
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("local/echo");

        var response = await chat.GetResponseAsync("Hello from M.E.AI", cancellationToken: Ct);

        Assert.Equal("Hello from M.E.AI", response.Text);
        var message = Assert.Single(response.Messages);
        Assert.Equal(ChatRole.Assistant, message.Role);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal("echo", response.ModelId);
        Assert.StartsWith("chatcmpl-", response.ResponseId, StringComparison.Ordinal);
        Assert.Equal(response.ResponseId, message.MessageId);
        Assert.NotNull(response.CreatedAt);
        Assert.Equal(3, response.Usage!.OutputTokenCount); // the local provider counts words
        Assert.True(response.Usage.InputTokenCount > 0);
        Assert.Equal(response.Usage.InputTokenCount + response.Usage.OutputTokenCount, response.Usage.TotalTokenCount);
        var raw = Assert.IsType<ChatCompletionResponse>(response.RawRepresentation);
        Assert.Equal("local", raw.ExtraFields!.Provider);
    }

    [Fact]
    public async Task Streaming_updates_concatenate_to_the_same_text_with_finish_reason_and_usage()
    {
        await using var services = AIHost.Build();
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("local/echo");
        const string Prompt = "one two three four five";

        var whole = await chat.GetResponseAsync(Prompt, cancellationToken: Ct);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in chat.GetStreamingResponseAsync(Prompt, cancellationToken: Ct))
        {
            updates.Add(update);
        }

        Assert.True(updates.Count(u => u.Text.Length > 0) > 1, "the text arrives in several updates");
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.All(updates, u => Assert.IsType<ChatCompletionChunk>(u.RawRepresentation));
        Assert.Single(updates, u => u.FinishReason is not null);
        Assert.Equal(ChatFinishReason.Stop, updates.Single(u => u.FinishReason is not null).FinishReason);
        var usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>());
        Assert.Equal(whole.Usage!.OutputTokenCount, usage.Details.OutputTokenCount);

        var combined = updates.ToChatResponse();
        Assert.Equal(whole.Text, combined.Text);
        Assert.Equal("echo", combined.ModelId);
        Assert.Equal(whole.Usage.TotalTokenCount, combined.Usage!.TotalTokenCount);
    }

    [Fact]
    public async Task UseFunctionInvocation_runs_the_CSharp_function_the_model_asks_for_and_answers_with_its_result()
    {
        var acme = new ScriptedAdapter();
        acme.OnChat = (context, request, _) => Task.FromResult(request.Messages![^1].Role == "tool"
            ? Replies.Text(context, "It is " + request.Messages[^1].Content!.GetText() + " degrees in Paris.")
            : AIHost.ToolCall(context, "call_1", "GetTemperature", """{"city":"Paris"}"""));
        await using var services = AIHost.Build(acme);
        var cities = new List<string>();
        var tool = AIFunctionFactory.Create(([Description("The city")] string city) => { cities.Add(city); return 21; }, "GetTemperature", "The temperature in a city");
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/model").AsBuilder().UseFunctionInvocation().Build();

        var response = await chat.GetResponseAsync("How warm is Paris?", new ChatOptions { Tools = [tool] }, Ct);

        Assert.Equal(["Paris"], cities);
        Assert.Equal("It is 21 degrees in Paris.", response.Text);
        var calls = acme.Calls.Select(c => c.Request).ToList();
        Assert.Equal(2, calls.Count);
        var declared = Assert.Single(calls[0].Tools!);
        Assert.Equal("function", declared.Type);
        Assert.Equal("GetTemperature", declared.Function!.Name);
        Assert.Equal("The temperature in a city", declared.Function.Description);
        Assert.Equal("string", declared.Function.Parameters!.Value.GetProperty("properties").GetProperty("city").GetProperty("type").GetString());
        Assert.Equal(["user", "assistant", "tool"], calls[1].Messages!.Select(m => m.Role));
        var assistantCall = Assert.Single(calls[1].Messages![1].ToolCalls!);
        Assert.Equal("call_1", assistantCall.Id);
        Assert.Equal("GetTemperature", assistantCall.Function!.Name);
        Assert.Equal("Paris", JsonDocument.Parse(assistantCall.Function.Arguments!).RootElement.GetProperty("city").GetString());
        Assert.Equal("call_1", calls[1].Messages![2].ToolCallId);
        Assert.Equal("21", calls[1].Messages![2].Content!.GetText());
    }

    [Fact]
    public async Task Streamed_tool_call_deltas_are_accumulated_into_one_call_and_invoked()
    {
        var acme = new ScriptedAdapter();
        acme.OnStream = (context, request, ct) => request.Messages![^1].Role == "tool"
            ? Replies.Stream(context, ["Sunny", " and 21."], ct)
            : AIHost.Chunks(
            [
                Replies.Chunk(context, new ChatDelta { Role = "assistant" }, null),
                Replies.Chunk(context, new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Id = "call_9", Type = "function", Function = new ChatCompletionFunctionCall { Name = "GetWeather", Arguments = "" } }] }, null),
                Replies.Chunk(context, new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Function = new ChatCompletionFunctionCall { Arguments = """{"ci""" } }] }, null),
                Replies.Chunk(context, new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Function = new ChatCompletionFunctionCall { Arguments = """ty":"Oslo"}""" } }] }, null),
                Replies.Chunk(context, new ChatDelta(), "tool_calls"),
            ], ct);
        await using var services = AIHost.Build(acme);
        var cities = new List<string>();
        var tool = AIFunctionFactory.Create((string city) => { cities.Add(city); return "sunny, 21"; }, "GetWeather");
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/model");

        // Without function invocation: the call arrives whole, once, on the update with the finish reason.
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in chat.GetStreamingResponseAsync("Weather in Oslo?", new ChatOptions { Tools = [tool] }, Ct))
        {
            updates.Add(update);
        }

        var finished = Assert.Single(updates, u => u.FinishReason is not null);
        Assert.Equal(ChatFinishReason.ToolCalls, finished.FinishReason);
        var call = Assert.Single(updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>());
        Assert.Same(call, Assert.Single(finished.Contents.OfType<FunctionCallContent>()));
        Assert.Equal("call_9", call.CallId);
        Assert.Equal("GetWeather", call.Name);
        Assert.Equal("Oslo", call.Arguments!["city"]!.ToString());

        // With it: the function runs and the stream continues with the answer.
        using var invoking = chat.AsBuilder().UseFunctionInvocation().Build();
        var text = string.Concat(await invoking.GetStreamingResponseAsync("Weather in Oslo?", new ChatOptions { Tools = [tool] }, Ct).Select(u => u.Text).ToListAsync(Ct));
        Assert.Equal(["Oslo"], cities);
        Assert.Equal("Sunny and 21.", text);
        Assert.Equal("sunny, 21", acme.Calls.Last().Request.Messages![^1].Content!.GetText());
    }

    [Fact]
    public async Task Malformed_tool_arguments_are_reported_on_the_call_not_thrown()
    {
        var acme = new ScriptedAdapter { OnChat = (context, _, _) => Task.FromResult(AIHost.ToolCall(context, "call_x", "f", "{not json")) };
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/model");

        var response = await chat.GetResponseAsync("go", cancellationToken: Ct);

        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("f", call.Name);
        Assert.NotNull(call.Exception);
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
    }

    [Fact]
    public async Task Options_reach_the_wire_request_the_provider_receives()
    {
        var acme = new ScriptedAdapter();
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/default-model");
        var schema = JsonDocument.Parse("""{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}""").RootElement;
        var options = new ChatOptions
        {
            ModelId = "acme/override",
            Instructions = "Be brief.",
            Temperature = 0.25f,
            TopP = 0.5f,
            TopK = 40,
            MaxOutputTokens = 123,
            StopSequences = ["END"],
            Seed = 42,
            FrequencyPenalty = 0.1f,
            PresencePenalty = 0.2f,
            Reasoning = new ReasoningOptions { Effort = ReasoningEffort.High },
            ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "Answer", "One answer"),
            Tools = [AIFunctionFactory.Create(() => 1, "One"), AIFunctionFactory.Create(() => 2, "Two")],
            ToolMode = ChatToolMode.RequireSpecific("Two"),
            AllowMultipleToolCalls = false,
            AdditionalProperties = new()
            {
                ["strict"] = true,
                ["user"] = "user-7",
                ["metadata"] = new Dictionary<string, string> { ["team"] = "search" },
                ["x_vendor_flag"] = "on",
            },
        };

        await chat.GetResponseAsync([new AI.ChatMessage(ChatRole.System, "sys"), new AI.ChatMessage(ChatRole.User, "hi") { AuthorName = "ann" }], options, Ct);

        var (context, request) = Assert.Single(acme.Calls);
        Assert.Equal("override", context.Model);
        Assert.Equal(["system", "system", "user"], request.Messages!.Select(m => m.Role));
        Assert.Equal("Be brief.", request.Messages![0].Content!.Text);
        Assert.Equal("ann", request.Messages[2].Name);
        Assert.Equal(0.25, request.Temperature!.Value, 3);
        Assert.Equal(0.5, request.TopP!.Value, 3);
        Assert.Equal(40, request.AdditionalProperties!["top_k"].GetInt32());
        Assert.Equal(123, request.MaxCompletionTokens);
        Assert.Null(request.MaxTokens);
        Assert.Equal(["END"], request.Stop);
        Assert.Equal(42, request.Seed);
        Assert.Equal(0.1, request.FrequencyPenalty!.Value, 3);
        Assert.Equal(0.2, request.PresencePenalty!.Value, 3);
        Assert.Equal("high", request.ReasoningEffort);
        Assert.Equal("json_schema", request.ResponseFormat!.Type);
        Assert.Equal("Answer", request.ResponseFormat.JsonSchema!.Name);
        Assert.Equal("One answer", request.ResponseFormat.JsonSchema.Description);
        Assert.True(request.ResponseFormat.JsonSchema.Strict);
        Assert.Equal(["answer"], request.ResponseFormat.JsonSchema.Schema!.Value.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["One", "Two"], request.Tools!.Select(t => t.Function!.Name));
        Assert.Equal("Two", request.ToolChoice!.Value.GetProperty("function").GetProperty("name").GetString());
        Assert.False(request.ParallelToolCalls);
        Assert.Equal("user-7", request.User);
        Assert.Equal("search", request.Metadata!["team"]);
        Assert.Equal("on", request.AdditionalProperties["x_vendor_flag"].GetString());
        Assert.False(request.AdditionalProperties.ContainsKey("strict"), "strict belongs to the response format, not the request");
        Assert.Null(request.Stream);
    }

    [Theory]
    [InlineData("none", "none")]
    [InlineData("auto", "auto")]
    [InlineData("required", "required")]
    public async Task Tool_modes_map_to_tool_choice(string mode, string expected)
    {
        var acme = new ScriptedAdapter();
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");
        ChatToolMode toolMode = mode switch { "none" => ChatToolMode.None, "auto" => ChatToolMode.Auto, _ => ChatToolMode.RequireAny };

        await chat.GetResponseAsync("x", new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "One")], ToolMode = toolMode }, Ct);
        await chat.GetResponseAsync("x", new ChatOptions { ToolMode = toolMode }, Ct);

        var requests = acme.Calls.Select(c => c.Request).ToList();
        Assert.Equal(expected, requests[0].ToolChoice!.Value.GetString());
        Assert.Null(requests[1].ToolChoice); // no tools: no tool_choice, which providers reject alone
    }

    [Fact]
    public async Task Response_formats_text_and_json_map_to_their_wire_types()
    {
        var acme = new ScriptedAdapter();
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        await chat.GetResponseAsync("x", new ChatOptions { ResponseFormat = ChatResponseFormat.Text }, Ct);
        await chat.GetResponseAsync("x", new ChatOptions { ResponseFormat = ChatResponseFormat.Json }, Ct);

        Assert.Equal(["text", "json_object"], acme.Calls.Select(c => c.Request.ResponseFormat!.Type));
    }

    [Fact]
    public async Task GetResponseAsync_of_T_sends_the_types_schema_and_parses_the_answer()
    {
        var acme = new ScriptedAdapter { OnChat = (context, _, _) => Task.FromResult(Replies.Text(context, """{"city":"Lima","population":10000000}""")) };
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        var response = await chat.GetResponseAsync<CityInfo>("The largest city of Peru?", cancellationToken: Ct);

        Assert.Equal(new CityInfo("Lima", 10_000_000), response.Result);
        var format = Assert.Single(acme.Calls).Request.ResponseFormat!;
        Assert.Equal("json_schema", format.Type);
        Assert.True(format.JsonSchema!.Schema!.Value.GetProperty("properties").TryGetProperty("population", out _));
    }

    [Fact]
    public async Task Fallbacks_in_AdditionalProperties_are_tried_when_the_primary_fails()
    {
        var backup = new ScriptedAdapter();
        await using var services = AIHost.Build(backup);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("local/echo");
        var options = new ChatOptions
        {
            AdditionalProperties = new()
            {
                ["fallbacks"] = new[] { "acme/backup-model" },
                ["metadata"] = new Dictionary<string, string> { ["local_status"] = "503" }, // the local provider fails with a retryable 503
            },
        };

        var response = await chat.GetResponseAsync("hello", options, Ct);

        Assert.Equal("reply from acme", response.Text);
        Assert.Equal("acme", Assert.IsType<ChatCompletionResponse>(response.RawRepresentation).ExtraFields!.Provider);
        var (context, request) = Assert.Single(backup.Calls);
        Assert.Equal("backup-model", context.Model);
        Assert.Null(request.Fallbacks);
    }

    [Fact]
    public async Task A_RawRepresentationFactory_request_is_the_base_and_wins_over_options()
    {
        var acme = new ScriptedAdapter();
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");
        var raw = new ChatCompletionRequest { Temperature = 0.9, ServiceTier = "flex" };

        await chat.GetResponseAsync("x", new ChatOptions { Temperature = 0.1f, TopP = 0.3f, RawRepresentationFactory = _ => raw }, Ct);

        var request = Assert.Single(acme.Calls).Request;
        Assert.Equal(0.9, request.Temperature);
        Assert.Equal(0.3, request.TopP!.Value, 3);
        Assert.Equal("flex", request.ServiceTier);
        Assert.Null(raw.Messages); // the caller's object is not changed
        Assert.Null(raw.Model);
    }

    [Fact]
    public async Task Usage_details_map_cached_and_reasoning_tokens_and_keep_the_other_counts()
    {
        var acme = new ScriptedAdapter();
        acme.OnChat = (context, _, _) =>
        {
            var reply = Replies.Text(context, "ok");
            reply.Usage = new ChatUsage
            {
                PromptTokens = 100,
                CompletionTokens = 40,
                TotalTokens = 140,
                PromptTokensDetails = JsonDocument.Parse("""{"cached_tokens":60,"audio_tokens":2}""").RootElement,
                CompletionTokensDetails = JsonDocument.Parse("""{"reasoning_tokens":30,"accepted_prediction_tokens":1}""").RootElement,
            };
            return Task.FromResult(reply);
        };
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        var usage = (await chat.GetResponseAsync("x", cancellationToken: Ct)).Usage!;

        Assert.Equal(100, usage.InputTokenCount);
        Assert.Equal(40, usage.OutputTokenCount);
        Assert.Equal(140, usage.TotalTokenCount);
        Assert.Equal(60, usage.CachedInputTokenCount);
        Assert.Equal(30, usage.ReasoningTokenCount);
        Assert.Equal(2, usage.AdditionalCounts!["prompt_tokens_details.audio_tokens"]);
        Assert.Equal(1, usage.AdditionalCounts["completion_tokens_details.accepted_prediction_tokens"]);
    }

    [Fact]
    public async Task Reasoning_and_refusal_come_back_as_their_contents()
    {
        var acme = new ScriptedAdapter();
        acme.OnChat = (context, _, _) =>
        {
            var reply = Replies.Text(context, string.Empty);
            var message = reply.Choices[0].Message!;
            message.Content = null;
            message.Refusal = "I can't help with that.";
            message.AdditionalProperties = new Dictionary<string, JsonElement> { ["reasoning"] = JsonSerializer.SerializeToElement("thinking...") };
            reply.Choices[0].FinishReason = "content_filter";
            return Task.FromResult(reply);
        };
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        var response = await chat.GetResponseAsync("x", cancellationToken: Ct);

        var contents = Assert.Single(response.Messages).Contents;
        Assert.Equal("thinking...", Assert.IsType<TextReasoningContent>(contents[0]).Text);
        var refusal = Assert.IsType<ErrorContent>(contents[1]);
        Assert.Equal("Refusal", refusal.ErrorCode);
        Assert.Equal("I can't help with that.", refusal.Message);
        Assert.Equal(ChatFinishReason.ContentFilter, response.FinishReason);
    }

    [Fact]
    public async Task A_gateway_error_surfaces_as_the_BifrostException()
    {
        await using var services = AIHost.Build();
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("local/unknown");

        var error = await Assert.ThrowsAsync<BifrostException>(() => chat.GetResponseAsync("x", cancellationToken: Ct));
        Assert.Equal(400, error.StatusCode);
        Assert.Equal("model_not_found", error.Error.Error.Code);

        var streamError = await Assert.ThrowsAsync<BifrostException>(async () =>
        {
            await foreach (var _ in chat.GetStreamingResponseAsync("x", cancellationToken: Ct))
            {
            }
        });
        Assert.Equal(400, streamError.StatusCode);
    }

    [Fact]
    public async Task What_the_wire_cannot_express_is_a_400_before_any_call()
    {
        var acme = new ScriptedAdapter();
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        var hosted = await Assert.ThrowsAsync<BifrostException>(() => chat.GetResponseAsync("x", new ChatOptions { Tools = [new HostedWebSearchTool()] }, Ct));
        var n = await Assert.ThrowsAsync<BifrostException>(() => chat.GetResponseAsync("x", new ChatOptions { AdditionalProperties = new() { ["n"] = 2 } }, Ct));
        var pdfByUrl = await Assert.ThrowsAsync<BifrostException>(() => chat.GetResponseAsync(
            [new AI.ChatMessage(ChatRole.User, [new UriContent("https://example.com/a.pdf", "application/pdf")])], cancellationToken: Ct));

        Assert.All([hosted, n, pdfByUrl], e => Assert.Equal(400, e.StatusCode));
        Assert.Equal("unsupported_tool_type", hosted.Error.Error.Code);
        Assert.Equal("n", n.Error.Error.Param);
        Assert.Equal("unsupported_content", pdfByUrl.Error.Error.Code);
        Assert.Empty(acme.Calls);
    }

    [Fact]
    public async Task Cancellation_reaches_the_provider_call_and_the_stream()
    {
        var acme = new ScriptedAdapter();
        var started = new TaskCompletionSource();
        acme.OnChat = async (context, _, ct) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return Replies.Text(context, "never");
        };
        acme.OnStream = (context, _, ct) => AIHost.Chunks(Enumerable.Range(0, 1000).Select(i => Replies.Chunk(context, new ChatDelta { Content = "x" }, null)), ct);
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var call = chat.GetResponseAsync("x", cancellationToken: cts.Token);
        await started.Task.WaitAsync(Ct);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);

        using var streamCts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in chat.GetStreamingResponseAsync("x", cancellationToken: streamCts.Token))
            {
                if (++received == 3)
                {
                    await streamCts.CancelAsync();
                }
            }
        });
        Assert.Equal(3, received);
    }

    [Fact]
    public async Task GetService_returns_metadata_the_gateway_and_itself_through_a_pipeline()
    {
        await using var services = AIHost.Build();
        var gateway = services.GetRequiredService<IBifrostClient>();
        using var chat = gateway.AsChatClient("local/echo");
        using var pipeline = chat.AsBuilder().UseFunctionInvocation().Build();

        var metadata = pipeline.GetService<ChatClientMetadata>()!;
        Assert.Equal("bifrost", metadata.ProviderName);
        Assert.Equal("local/echo", metadata.DefaultModelId);
        Assert.Same(gateway, pipeline.GetService<IBifrostClient>());
        Assert.Same(chat, chat.GetService<IChatClient>());
        Assert.Null(chat.GetService<ChatClientMetadata>("a-key"));
        Assert.Null(chat.GetService<EmbeddingGeneratorMetadata>());
    }

    public sealed record CityInfo(string City, long Population);
}
