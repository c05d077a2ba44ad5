#pragma warning disable OPENAI001 // the Responses client is experimental in the SDK
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenAI;
using OpenAI.Embeddings;
using OpenAI.Responses;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>The official OpenAI .NET SDK (2.15) against the gateway on TestHost: Responses (sync, stream, tools), embeddings (both encodings), completions and input-token counting (protocol calls: the SDK has no typed client for them).</summary>
public sealed class InferenceOpenAISdkTests : IAsyncLifetime
{
    private ChatOnlyUpstream _upstream = null!;
    private GatewayHost _host = null!;
    private readonly ConcurrentQueue<(string Method, string Path, JsonNode? Body, string? Authorization)> _sent = new();

    public async ValueTask InitializeAsync()
    {
        _upstream = await ChatOnlyUpstream.StartAsync();
        _host = await StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = _upstream.BaseUrl,
            NativeResponses = false,
            MaxRetries = 0,
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private OpenAIClient Client() =>
        new(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(_host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(new HttpClient(new Recorder(_host.Server.CreateHandler(), _sent))),
            RetryPolicy = new ClientRetryPolicy(0),
        });

    private (string Method, string Path, JsonNode? Body, string? Authorization) LastSent() => _sent.Last();

    [Fact]
    public async Task Responses_sync_returns_a_response_the_sdk_reads()
    {
        var client = Client().GetResponsesClient();
        var options = new CreateResponseOptions("local/echo", [ResponseItem.CreateUserMessageItem("Hello from the SDK")])
        {
            Instructions = "Echo the user.",
            MaxOutputTokenCount = 64,
            Temperature = 0.5f,
        };
        options.Metadata["run"] = "sdk";
        ResponseResult response = await client.CreateResponseAsync(options, Ct);

        Assert.StartsWith("resp_", response.Id, StringComparison.Ordinal);
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.Equal("Hello from the SDK", response.GetOutputText());
        Assert.Equal("echo", response.Model);
        Assert.Equal(64, response.MaxOutputTokenCount);
        Assert.Equal(0.5f, response.Temperature);
        Assert.Equal("sdk", response.Metadata["run"]);
        var message = Assert.IsAssignableFrom<MessageResponseItem>(Assert.Single(response.OutputItems));
        Assert.Equal(MessageRole.Assistant, message.Role);
        Assert.True(response.Usage.InputTokenCount > 0);
        Assert.Equal(4, response.Usage.OutputTokenCount);
        Assert.Equal(response.Usage.InputTokenCount + response.Usage.OutputTokenCount, response.Usage.TotalTokenCount);

        var (method, path, body, _) = LastSent();
        Assert.Equal(("POST", "/openai/v1/responses"), (method, path));
        Assert.Equal("Echo the user.", body!["instructions"]!.GetValue<string>());
    }

    [Fact]
    public async Task Responses_sync_with_function_tools_on_a_chat_only_provider_gives_function_call_items()
    {
        _upstream.ChatReply = request => ChatOnlyUpstream.Completion(request, null, "tool_calls", new JsonArray(
            new JsonObject { ["id"] = "call_sdk", ["type"] = "function", ["function"] = new JsonObject { ["name"] = "get_weather", ["arguments"] = """{"city":"Oslo"}""" } }));
        var client = Client().GetResponsesClient();
        var options = new CreateResponseOptions("compat/gpt-test", [ResponseItem.CreateUserMessageItem("Weather in Oslo?")]);
        options.Tools.Add(ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""), strictModeEnabled: false, functionDescription: "Weather by city"));
        ResponseResult response = await client.CreateResponseAsync(options, Ct);

        var call = Assert.IsAssignableFrom<FunctionCallResponseItem>(Assert.Single(response.OutputItems));
        Assert.Equal("call_sdk", call.CallId);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Oslo"}""", call.FunctionArguments.ToString());
        Assert.Equal(11, response.Usage.InputTokenCount);

        // The next turn, with the call and its output as SDK items, reaches the upstream as tool_calls + a tool message.
        _upstream.ChatReply = request => ChatOnlyUpstream.Completion(request, "3 degrees.", "stop");
        var next = new CreateResponseOptions("compat/gpt-test", [ResponseItem.CreateUserMessageItem("Weather in Oslo?"), call, ResponseItem.CreateFunctionCallOutputItem("call_sdk", """{"celsius":3}""")]);
        next.Tools.Add(ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString("""{"type":"object"}"""), strictModeEnabled: false));
        ResponseResult answer = await client.CreateResponseAsync(next, Ct);
        Assert.Equal("3 degrees.", answer.GetOutputText());

        var messages = _upstream.Requests.Last().Body!["messages"]!.AsArray();
        Assert.Equal(["user", "assistant", "tool"], messages.Select(m => m!["role"]!.GetValue<string>()));
        Assert.Equal("call_sdk", messages[1]!["tool_calls"]![0]!["id"]!.GetValue<string>());
        Assert.Equal("call_sdk", messages[2]!["tool_call_id"]!.GetValue<string>());
        Assert.Equal("""{"celsius":3}""", messages[2]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Responses_streaming_gives_the_sdk_its_typed_updates_in_order()
    {
        var client = Client().GetResponsesClient();
        var options = new CreateResponseOptions("local/echo", [ResponseItem.CreateUserMessageItem("stream me to the SDK")]) { Instructions = "Echo.", StreamingEnabled = true };
        var updates = new List<StreamingResponseUpdate>();
        await foreach (var update in await client.CreateResponseStreamingAsync(options, Ct))
        {
            updates.Add(update);
        }

        var kinds = new List<Type>();
        foreach (var update in updates)
        {
            if (kinds.Count == 0 || kinds[^1] != update.GetType() || update is not StreamingResponseOutputTextDeltaUpdate)
            {
                kinds.Add(update.GetType());
            }
        }

        Assert.Equal(
            [
                typeof(StreamingResponseCreatedUpdate),
                typeof(StreamingResponseInProgressUpdate),
                typeof(StreamingResponseOutputItemAddedUpdate),
                typeof(StreamingResponseContentPartAddedUpdate),
                typeof(StreamingResponseOutputTextDeltaUpdate),
                typeof(StreamingResponseOutputTextDoneUpdate),
                typeof(StreamingResponseContentPartDoneUpdate),
                typeof(StreamingResponseOutputItemDoneUpdate),
                typeof(StreamingResponseCompletedUpdate),
            ],
            kinds);
        var numbers = updates.Select(u => u.SequenceNumber).ToList();
        Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers);

        var text = string.Concat(updates.OfType<StreamingResponseOutputTextDeltaUpdate>().Select(u => u.Delta));
        Assert.Equal("stream me to the SDK", text);
        Assert.Equal(text, updates.OfType<StreamingResponseOutputTextDoneUpdate>().Single().Text);
        var completed = updates.OfType<StreamingResponseCompletedUpdate>().Single().Response;
        Assert.Equal(ResponseStatus.Completed, completed.Status);
        Assert.Equal(text, completed.GetOutputText());
        Assert.Equal(updates.OfType<StreamingResponseCreatedUpdate>().Single().Response.Id, completed.Id);
        Assert.Equal(5, completed.Usage.OutputTokenCount);
        Assert.True(LastSent().Body!["stream"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Responses_refusals_reach_the_sdk_as_client_result_exceptions_with_the_message()
    {
        var client = Client().GetResponsesClient();
        var options = new CreateResponseOptions("local/echo", [ResponseItem.CreateUserMessageItem("hi")]) { PreviousResponseId = "resp_earlier" };
        var error = await Assert.ThrowsAsync<ClientResultException>(() => client.CreateResponseAsync(options, Ct));
        Assert.Equal(400, error.Status);
        Assert.Contains("previous_response_id", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embeddings_through_the_sdk_decode_to_the_gateways_float_vectors()
    {
        var client = Client().GetEmbeddingClient("local/echo");
        OpenAIEmbeddingCollection collection = await client.GenerateEmbeddingsAsync(["first text", "second text"], new EmbeddingGenerationOptions { Dimensions = 48 }, Ct);

        // The typed SDK method asks for base64 (and decodes it itself).
        var sent = LastSent();
        Assert.Equal("/openai/v1/embeddings", sent.Path);
        var sdkEncoding = sent.Body!["encoding_format"]?.GetValue<string>() ?? "float";
        Assert.Equal("base64", sdkEncoding);
        Assert.Equal(48, sent.Body["dimensions"]!.GetValue<int>());

        var floats = await _host.PostOkAsync("/openai/v1/embeddings", new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("first text", "second text"), ["dimensions"] = 48, ["encoding_format"] = "float" });
        Assert.Equal(2, collection.Count);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(i, collection[i].Index);
            Assert.Equal(Floats(floats.GetProperty("data")[i].GetProperty("embedding")), collection[i].ToFloats().ToArray());
        }

        Assert.Equal(4, collection.Usage.InputTokenCount);
        Assert.Equal("echo", collection.Model);

        // The other encoding through the SDK's protocol method, read with the SDK's own model reader.
        var other = sdkEncoding == "base64" ? "float" : "base64";
        var raw = await client.GenerateEmbeddingsAsync(
            BinaryContent.Create(BinaryData.FromString(new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("first text", "second text"), ["dimensions"] = 48, ["encoding_format"] = other }.ToJsonString())),
            new RequestOptions { CancellationToken = Ct });
        var otherCollection = ModelReaderWriter.Read<OpenAIEmbeddingCollection>(raw.GetRawResponse().Content)!;
        using var otherJson = JsonDocument.Parse(raw.GetRawResponse().Content);
        Assert.Equal(other == "base64" ? JsonValueKind.String : JsonValueKind.Array, otherJson.RootElement.GetProperty("data")[0].GetProperty("embedding").ValueKind);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(collection[i].ToFloats().ToArray(), otherCollection[i].ToFloats().ToArray());
        }

        // One string, and token input.
        OpenAIEmbedding single = await client.GenerateEmbeddingAsync("first text", new EmbeddingGenerationOptions { Dimensions = 48 }, Ct);
        Assert.Equal(collection[0].ToFloats().ToArray(), single.ToFloats().ToArray());
        OpenAIEmbeddingCollection tokens = await client.GenerateEmbeddingsAsync([new ReadOnlyMemory<int>([9906, 1917]), new ReadOnlyMemory<int>([42])], cancellationToken: Ct);
        Assert.Equal(2, tokens.Count);
        Assert.Equal(256, tokens[0].ToFloats().Length);
        Assert.Equal(3, tokens.Usage.InputTokenCount);
    }

    [Fact]
    public async Task Completions_through_the_sdk_pipeline_sync_and_streaming()
    {
        // OpenAI .NET 2.x has no client for the legacy completions API: send through the SDK's pipeline (its auth, headers, transport).
        var pipeline = Client().GetEmbeddingClient("unused").Pipeline;
        var endpoint = new Uri(_host.Server.BaseAddress, "/openai/v1/completions");

        using var sync = pipeline.CreateMessage();
        sync.Request.Method = "POST";
        sync.Request.Uri = endpoint;
        sync.Request.Headers.Set("Content-Type", "application/json");
        sync.Request.Content = BinaryContent.Create(BinaryData.FromString("""{"model":"local/echo","prompt":"Complete me","max_tokens":8}"""));
        await pipeline.SendAsync(sync);
        Assert.Equal(200, sync.Response!.Status);
        using var syncJson = JsonDocument.Parse(sync.Response.Content);
        Assert.Equal("text_completion", syncJson.RootElement.GetProperty("object").GetString());
        Assert.Equal("Complete me", syncJson.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());

        using var stream = pipeline.CreateMessage();
        stream.BufferResponse = false;
        stream.Request.Method = "POST";
        stream.Request.Uri = endpoint;
        stream.Request.Headers.Set("Content-Type", "application/json");
        stream.Request.Content = BinaryContent.Create(BinaryData.FromString("""{"model":"local/echo","prompt":"Complete me","stream":true,"stream_options":{"include_usage":true}}"""));
        await pipeline.SendAsync(stream);
        Assert.Equal(200, stream.Response!.Status);
        using var reader = new StreamReader(stream.Response.ContentStream!, Encoding.UTF8);
        var events = ParseSse(await reader.ReadToEndAsync(Ct));
        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.SkipLast(1).Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        Assert.Equal("Complete me", string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal(syncJson.RootElement.GetProperty("usage").GetRawText(), chunks[^1].GetProperty("usage").GetRawText());
        Assert.Equal("Bearer sk-test", LastSent().Authorization);
    }

    [Fact]
    public async Task Input_token_counting_through_the_sdk_protocol_method()
    {
        var client = Client().GetResponsesClient();
        var body = new JsonObject { ["model"] = "compat/gpt-4o", ["input"] = "hello world" };
        var result = await client.GetInputTokenCountAsync(BinaryContent.Create(BinaryData.FromString(body.ToJsonString())), "application/json", new RequestOptions { CancellationToken = Ct });

        Assert.Equal(200, result.GetRawResponse().Status);
        Assert.Equal(("POST", "/openai/v1/responses/input_tokens"), (LastSent().Method, LastSent().Path));
        using var json = JsonDocument.Parse(result.GetRawResponse().Content);
        Assert.Equal("response.input_tokens", json.RootElement.GetProperty("object").GetString());
        Assert.Equal(9, json.RootElement.GetProperty("input_tokens").GetInt32());
        Assert.Equal("estimated", json.RootElement.GetProperty("extra_fields").GetProperty("count_method").GetString());
    }

    /// <summary>Records what the SDK sends (method, path, JSON body) before passing it to the TestServer.</summary>
    private sealed class Recorder(HttpMessageHandler inner, ConcurrentQueue<(string, string, JsonNode?, string?)> sent) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            JsonNode? body = null;
            if (request.Content is not null && request.Content.Headers.ContentType?.MediaType == "application/json")
            {
                var text = await request.Content.ReadAsStringAsync(cancellationToken);
                body = JsonNode.Parse(text);
                var copy = new StringContent(text, Encoding.UTF8, "application/json");
                request.Content = copy;
            }

            sent.Enqueue((request.Method.Method, request.RequestUri!.AbsolutePath, body, request.Headers.Authorization?.ToString()));
            return await base.SendAsync(request, cancellationToken);
        }
    }
}
