using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Bedrock;
using Bifrost.Middleware.Tests.Bedrock;
using Bifrost.Middleware.Tests.Vertex;
using static Bifrost.Middleware.Tests.Anthropic.AnthropicInboundTests;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>
/// Claude on Vertex AI and on Bedrock from the <c>/anthropic</c> routes: the caller's Messages body goes natively to
/// Vertex's <c>:rawPredict</c> / <c>:streamRawPredict</c> (<c>anthropic_version: vertex-2023-10-16</c>, no model, betas as
/// the <c>anthropic-beta</c> header) and to Bedrock's InvokeModel / InvokeModelWithResponseStream
/// (<c>anthropic_version: bedrock-2023-05-31</c>, no model, no stream, betas as <c>anthropic_beta</c> in the body), thinking,
/// cache_control and tool_use untouched; answers and events come back as the provider wrote them; errors in Anthropic's
/// envelope. The fakes speak each provider's documented wire format (see <see cref="FakeVertexUpstream"/> and
/// <see cref="FakeClaudeOnBedrockUpstream"/>).
/// </summary>
public sealed class AnthropicCloudPassthroughTests : AnthropicTestBase
{
    private const string MessagesPath = "/anthropic/v1/messages";
    private const string VertexClaude = "claude-sonnet-4-5@20250929";
    private const string BedrockClaude = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

    /// <summary>A body with what must survive untouched: signed thinking, cache_control, tool_use / tool_result, tools, server tools, unknown fields.</summary>
    private const string Body = """
        {"model":"MODEL","max_tokens":2000,
         "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
         "messages":[
           {"role":"user","content":[{"type":"text","text":"Look it up.","cache_control":{"type":"ephemeral","ttl":"1h"}}]},
           {"role":"assistant","content":[{"type":"thinking","thinking":"I should call lookup.","signature":"EqQBCkYIARgC"},{"type":"redacted_thinking","data":"EmwKAhgBEgy"},{"type":"tool_use","id":"toolu_01","name":"lookup","input":{"q":"x","n":[1,2]}}]},
           {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":[{"type":"text","text":"found"}],"is_error":false}]}],
         "thinking":{"type":"enabled","budget_tokens":1024},
         "tools":[{"name":"lookup","description":"Looks up.","input_schema":{"type":"object","properties":{"q":{"type":"string"}}},"cache_control":{"type":"ephemeral"}}],
         "tool_choice":{"type":"auto"},
         "a_future_field":{"k":[true,null]}}
        """;

    private static string BodyFor(string model, bool stream = false)
    {
        var body = JsonNode.Parse(Body.Replace("MODEL", model, StringComparison.Ordinal))!.AsObject();
        if (stream)
        {
            body["stream"] = true;
        }

        return body.ToJsonString();
    }

    /// <summary>The caller's body as the provider must receive it: no model (and no stream on Bedrock), then the provider's fields.</summary>
    private static JsonObject Expected(bool stream, params (string Name, JsonNode Value)[] added)
    {
        var expected = JsonNode.Parse(Body)!.AsObject();
        expected.Remove("model");
        if (stream)
        {
            expected["stream"] = true;
        }

        foreach (var (name, value) in added)
        {
            expected[name] = value;
        }

        return expected;
    }

    private static readonly JsonObject ThinkingAnswer = new()
    {
        ["id"] = "msg_01CLOUD",
        ["model"] = "claude-sonnet-4-5-20250929",
        ["content"] = new JsonArray(
            new JsonObject { ["type"] = "thinking", ["thinking"] = "Done thinking.", ["signature"] = "sig-cloud" },
            new JsonObject { ["type"] = "text", ["text"] = "Here." },
            new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_02", ["name"] = "lookup", ["input"] = new JsonObject { ["q"] = "y" } }),
        ["stop_reason"] = "tool_use",
        ["stop_sequence"] = null,
        ["usage"] = new JsonObject { ["input_tokens"] = 40, ["output_tokens"] = 12, ["cache_creation_input_tokens"] = 3, ["cache_read_input_tokens"] = 20 },
    };

    // ---------------------------------------------------------------- Vertex

    [Fact]
    public async Task Vertex_Claude_gets_the_callers_body_on_rawPredict_without_model_with_vertex_anthropic_version_and_the_betas_as_a_header()
    {
        await using var vertex = await FakeVertexUpstream.StartAsync();
        vertex.RespondClaude = _ => (JsonObject)ThinkingAnswer.DeepClone();
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["vertex"] = VertexProvider(vertex, "interleaved-thinking-2025-05-14"));

        using var response = await host.SendAsync(MessagesPath, BodyFor("vertex/" + VertexClaude), ("anthropic-beta", "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"), ("anthropic-version", "2023-06-01"), ("x-api-key", "sk-ant-callers"));
        var json = await Json(response, HttpStatusCode.OK);

        var sent = vertex.ChatRequests.Single();
        Assert.Equal($"/v1/projects/{VertexTestBase.Project}/locations/us-east5/publishers/anthropic/models/{VertexClaude}:rawPredict", sent.Path);
        Assert.True(JsonNode.DeepEquals(Expected(false, ("anthropic_version", "vertex-2023-10-16")), sent.Body), sent.Body!.ToJsonString());
        Assert.Equal("interleaved-thinking-2025-05-14,prompt-caching-2024-07-31", sent.Headers["anthropic-beta"]);
        Assert.False(sent.Headers.ContainsKey("anthropic-version")); // Vertex takes its own, in the body
        Assert.False(sent.Headers.ContainsKey("x-api-key"));
        Assert.Equal("Bearer " + FakeVertexUpstream.Token, sent.Headers["authorization"]);

        var expected = (JsonObject)ThinkingAnswer.DeepClone();
        expected["type"] = "message";
        expected["role"] = "assistant";
        Assert.True(JsonNode.DeepEquals(expected, JsonNode.Parse(json.GetRawText())), json.GetRawText());
    }

    [Fact]
    public async Task Vertex_Claude_streams_on_streamRawPredict_and_relays_the_events_as_written()
    {
        await using var vertex = await FakeVertexUpstream.StartAsync();
        string[] events =
        [
            """{"type":"message_start","message":{"id":"msg_vrtx_S","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}""",
            """{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm."}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig-v"}}""",
            """{"type":"content_block_stop","index":0}""",
            """{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_9","name":"lookup","input":{}}}""",
            """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\":\"z\"}"}}""",
            """{"type":"content_block_stop","index":1}""",
            """{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":17}}""",
            """{"type":"message_stop"}""",
        ];
        vertex.RawStream = _ => events.Select(e => $"event: {JsonNode.Parse(e)!["type"]}\ndata: {e}\n\n");
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["vertex"] = VertexProvider(vertex));

        using var response = await host.SendAsync(MessagesPath, BodyFor("vertex/" + VertexClaude, stream: true), ("anthropic-beta", "fine-grained-tool-streaming-2025-05-14"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = ParseEvents(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal(events.Length, received.Count);
        for (var i = 0; i < events.Length; i++)
        {
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(events[i]), JsonNode.Parse(received[i].Data.GetRawText())), $"event {i}: {received[i].Data.GetRawText()}");
        }

        var sent = vertex.ChatRequests.Single();
        Assert.EndsWith($"/models/{VertexClaude}:streamRawPredict", sent.Path, StringComparison.Ordinal);
        Assert.True(JsonNode.DeepEquals(Expected(true, ("anthropic_version", "vertex-2023-10-16")), sent.Body), sent.Body!.ToJsonString());
        Assert.Equal("fine-grained-tool-streaming-2025-05-14", sent.Headers["anthropic-beta"]);
    }

    [Fact]
    public async Task Vertex_errors_answer_in_Anthropics_envelope_whether_Claude_or_Google_wrote_them()
    {
        await using var vertex = await FakeVertexUpstream.StartAsync();
        vertex.Failures.Enqueue(new FakeVertexUpstream.Failure(429, "Number of requests exceeds the limit", Anthropic: true));
        vertex.Failures.Enqueue(new FakeVertexUpstream.Failure(403, "Permission 'aiplatform.endpoints.predict' denied", "IAM_PERMISSION_DENIED"));
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["vertex"] = VertexProvider(vertex));

        using var limited = await host.SendAsync(MessagesPath, BodyFor("vertex/" + VertexClaude));
        var first = await Json(limited, HttpStatusCode.TooManyRequests);
        using var denied = await host.SendAsync(MessagesPath, BodyFor("vertex/" + VertexClaude));
        var second = await Json(denied, HttpStatusCode.Forbidden);

        Assert.Equal("""{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests exceeds the limit"}}""", first.GetRawText());
        Assert.Equal("error", second.GetProperty("type").GetString());
        Assert.Equal("permission_error", second.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("aiplatform.endpoints.predict", second.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Gemini_model_on_Vertex_still_converts_through_chat()
    {
        await using var vertex = await FakeVertexUpstream.StartAsync();
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["vertex"] = VertexProvider(vertex));

        using var response = await host.SendAsync(MessagesPath, """{"model":"vertex/gemini-2.5-flash","max_tokens":50,"messages":[{"role":"user","content":"Hello"}]}""", ("anthropic-beta", "prompt-caching-2024-07-31"));
        var json = await Json(response, HttpStatusCode.OK);

        var sent = vertex.ChatRequests.Single();
        Assert.EndsWith("/publishers/google/models/gemini-2.5-flash:generateContent", sent.Path, StringComparison.Ordinal);
        Assert.False(sent.Headers.ContainsKey("anthropic-beta"));
        Assert.Equal("message", json.GetProperty("type").GetString());
        Assert.Equal("echo: Hello", json.GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Vertex_Claude_count_tokens_goes_natively_to_count_tokens_rawPredict_with_the_model_in_the_body()
    {
        await using var vertex = await FakeVertexUpstream.StartAsync();
        vertex.CountTokensResult = 77;
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["vertex"] = VertexProvider(vertex));

        using var response = await host.SendAsync(MessagesPath + "/count_tokens", """{"model":"vertex/claude-sonnet-4-5@20250929","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}""", ("anthropic-beta", "token-counting-2024-11-01"));
        var json = await Json(response, HttpStatusCode.OK);

        Assert.Equal("""{"input_tokens":77}""", json.GetRawText());
        var sent = vertex.Requests.Single();
        Assert.EndsWith("/publishers/anthropic/models/count-tokens:rawPredict", sent.Path, StringComparison.Ordinal);
        Assert.Equal("""{"model":"claude-sonnet-4-5@20250929","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}],"anthropic_version":"vertex-2023-10-16"}""", sent.Body!.ToJsonString());
        Assert.Equal("token-counting-2024-11-01", sent.Headers["anthropic-beta"]);
    }

    // ---------------------------------------------------------------- Bedrock

    [Fact]
    public async Task Bedrock_Claude_gets_the_callers_body_on_InvokeModel_with_bedrock_anthropic_version_and_the_betas_in_the_body()
    {
        await using var bedrock = await FakeClaudeOnBedrockUpstream.StartAsync();
        bedrock.Respond = _ => (JsonObject)ThinkingAnswer.DeepClone();
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["bedrock"] = BedrockProvider(bedrock, "context-1m-2025-08-07"));

        using var response = await host.SendAsync(MessagesPath, BodyFor("bedrock/" + BedrockClaude), ("anthropic-beta", "interleaved-thinking-2025-05-14, context-1m-2025-08-07"), ("anthropic-version", "2023-06-01"), ("x-api-key", "sk-ant-callers"));
        var json = await Json(response, HttpStatusCode.OK);

        var sent = bedrock.Requests.Single();
        Assert.Equal("invoke", sent.Operation);
        Assert.Equal(BedrockClaude, sent.ModelId);
        Assert.Equal("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke", sent.RawTarget);
        var expected = Expected(false, ("anthropic_version", "bedrock-2023-05-31"), ("anthropic_beta", new JsonArray("context-1m-2025-08-07", "interleaved-thinking-2025-05-14")));
        Assert.True(JsonNode.DeepEquals(expected, sent.Body), sent.Body!.ToJsonString());
        Assert.False(sent.Headers.ContainsKey("anthropic-beta"));
        Assert.False(sent.Headers.ContainsKey("anthropic-version"));
        Assert.False(sent.Headers.ContainsKey("x-api-key"));
        Assert.Equal("Bearer bedrock-api-key", sent.Headers["authorization"]);

        var answer = (JsonObject)ThinkingAnswer.DeepClone();
        answer["type"] = "message";
        answer["role"] = "assistant";
        Assert.True(JsonNode.DeepEquals(answer, JsonNode.Parse(json.GetRawText())), json.GetRawText());
    }

    [Fact]
    public async Task Bedrock_Claude_streams_from_InvokeModelWithResponseStream_chunks_without_stream_in_the_body()
    {
        await using var bedrock = await FakeClaudeOnBedrockUpstream.StartAsync();
        bedrock.Respond = _ => (JsonObject)ThinkingAnswer.DeepClone();
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["bedrock"] = BedrockProvider(bedrock));

        using var response = await host.SendAsync(MessagesPath, BodyFor("bedrock/" + BedrockClaude, stream: true));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var received = ParseEvents(await response.Content.ReadAsStringAsync(Ct));

        var message = (JsonObject)ThinkingAnswer.DeepClone();
        message["type"] = "message";
        message["role"] = "assistant";
        var expected = FakeAnthropicUpstream.Events(message).Select(e => JsonNode.Parse(e.Split("data: ")[1].Trim())!).ToList();
        Assert.Equal(expected.Count, received.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i]["type"]!.GetValue<string>(), received[i].Name);
            Assert.True(JsonNode.DeepEquals(expected[i], JsonNode.Parse(received[i].Data.GetRawText())), $"event {i}: {received[i].Data.GetRawText()}");
        }

        Assert.Contains(received, e => e.Name == "content_block_delta" && e.Data.GetProperty("delta").GetProperty("type").GetString() == "signature_delta");
        var sent = bedrock.Requests.Single();
        Assert.Equal("invoke-with-response-stream", sent.Operation);
        Assert.Equal("application/vnd.amazon.eventstream", sent.Headers["accept"]);
        Assert.True(JsonNode.DeepEquals(Expected(false, ("anthropic_version", "bedrock-2023-05-31")), sent.Body), sent.Body!.ToJsonString());
    }

    [Fact]
    public async Task A_Bedrock_exception_frame_mid_stream_ends_the_stream_with_Anthropics_error_event()
    {
        await using var bedrock = await FakeClaudeOnBedrockUpstream.StartAsync();
        bedrock.RawStream = message => [.. FakeClaudeOnBedrockUpstream.Chunks(message).Take(3), FakeBedrockUpstream.Exception("throttlingException", "Too many tokens, please wait.")];
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["bedrock"] = BedrockProvider(bedrock));

        using var response = await host.SendAsync(MessagesPath, BodyFor("bedrock/" + BedrockClaude, stream: true));
        var received = ParseEvents(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal(["message_start", "ping", "content_block_start", "error"], received.Select(e => e.Name));
        Assert.Equal("rate_limit_error", received[^1].Data.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("Too many tokens, please wait.", received[^1].Data.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Bedrock_errors_answer_in_Anthropics_envelope_with_Bedrocks_status_and_message()
    {
        await using var bedrock = await FakeClaudeOnBedrockUpstream.StartAsync();
        bedrock.Failures.Enqueue((400, "ValidationException", "messages.1.content.0: thinking block signature is invalid"));
        bedrock.Failures.Enqueue((429, "ThrottlingException", "Too many requests, please wait before trying again."));
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["bedrock"] = BedrockProvider(bedrock));

        using var invalid = await host.SendAsync(MessagesPath, BodyFor("bedrock/" + BedrockClaude));
        var first = await Json(invalid, HttpStatusCode.BadRequest);
        using var throttled = await host.SendAsync(MessagesPath, BodyFor("bedrock/" + BedrockClaude, stream: true));
        var second = await Json(throttled, HttpStatusCode.TooManyRequests);

        Assert.Equal("""{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0: thinking block signature is invalid"}}""", first.GetRawText());
        Assert.Equal("""{"type":"error","error":{"type":"rate_limit_error","message":"Too many requests, please wait before trying again."}}""", second.GetRawText());
    }

    [Fact]
    public async Task Bedrock_count_tokens_sends_the_InvokeModel_body_to_CountTokens_and_falls_back_to_the_estimate_when_refused()
    {
        await using var bedrock = await FakeClaudeOnBedrockUpstream.StartAsync();
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["bedrock"] = BedrockProvider(bedrock));
        const string Count = """{"model":"bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0","messages":[{"role":"user","content":"count these words please"}]}""";

        using var counted = await host.SendAsync(MessagesPath + "/count_tokens", Count, ("anthropic-beta", "context-1m-2025-08-07"));
        Assert.Equal("""{"input_tokens":57}""", (await Json(counted, HttpStatusCode.OK)).GetRawText());
        var sent = bedrock.Requests.Single();
        Assert.Equal("count-tokens", sent.Operation);
        var invokeBody = JsonNode.Parse(Convert.FromBase64String(sent.Body!["input"]!["invokeModel"]!["body"]!.GetValue<string>()))!;
        Assert.Equal("""{"messages":[{"role":"user","content":"count these words please"}],"max_tokens":4096,"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["context-1m-2025-08-07"]}""", invokeBody.ToJsonString());

        bedrock.Failures.Enqueue((400, "ValidationException", "The provided model doesn't support counting tokens."));
        using var estimated = await host.SendAsync(MessagesPath + "/count_tokens", Count);
        Assert.True((await Json(estimated, HttpStatusCode.OK)).GetProperty("input_tokens").GetInt32() > 0);
        Assert.Equal(2, bedrock.Requests.Count);
    }

    [Fact]
    public async Task A_Bedrock_async_job_keeps_the_callers_betas_and_the_invoke_body_carries_them()
    {
        await using var bedrock = await FakeClaudeOnBedrockUpstream.StartAsync();
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["bedrock"] = BedrockProvider(bedrock));

        using var submit = await host.SendAsync(MessagesPath, """{"model":"bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0","max_tokens":10,"messages":[{"role":"user","content":"later"}]}""", ("x-bf-async", "true"), ("anthropic-beta", "prompt-caching-2024-07-31"));
        var id = (await Json(submit, HttpStatusCode.OK)).GetProperty("id").GetString()!;
        JsonElement result = default;
        for (var i = 0; i < 200; i++)
        {
            using var poll = await host.SendAsync(MessagesPath, "{}", ("x-bf-async-id", id));
            result = await Json(poll, HttpStatusCode.OK);
            if (result.GetProperty("content").GetArrayLength() > 0)
            {
                break;
            }

            await Task.Delay(20, Ct);
        }

        Assert.Equal("echo: later", result.GetProperty("content")[0].GetProperty("text").GetString());
        var sent = bedrock.Requests.Single();
        Assert.Equal("""["prompt-caching-2024-07-31"]""", sent.Body!["anthropic_beta"]!.ToJsonString());
        Assert.False(sent.Body.ContainsKey("x-bf-anthropic-headers"));
    }

    [Theory]
    [InlineData("anthropic.claude-sonnet-4-5-20250929-v1:0", true)]
    [InlineData("us.anthropic.claude-3-7-sonnet-20250219-v1:0", true)]
    [InlineData("arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0", true)]
    [InlineData("meta.llama3-1-70b-instruct-v1:0", false)]
    [InlineData("amazon.nova-pro-v1:0", false)]
    public void Bedrock_serves_Claude_model_ids_natively_and_converts_the_others(string model, bool native)
    {
        using var services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
        Assert.Equal(native, services.GetRequiredService<BedrockAdapter>().HasNativeMessages(model));
    }

    private static ProviderOptions VertexProvider(FakeVertexUpstream vertex, string? configuredBeta = null)
    {
        var options = new ProviderOptions
        {
            Type = "vertex",
            BaseUrl = vertex.BaseUrl,
            ProjectId = VertexTestBase.Project,
            Region = "us-east5",
            Keys = [new ProviderKeyOptions { Value = FakeVertexUpstream.Token }],
            MaxRetries = 0,
            RetryBaseDelay = TimeSpan.Zero,
        };
        if (configuredBeta is not null)
        {
            options.Headers["anthropic-beta"] = configuredBeta;
        }

        return options;
    }

    private static ProviderOptions BedrockProvider(FakeClaudeOnBedrockUpstream bedrock, string? configuredBeta = null)
    {
        var options = new ProviderOptions
        {
            Type = "bedrock",
            BaseUrl = bedrock.BaseUrl,
            Region = "us-east-1",
            Keys = [new ProviderKeyOptions { Value = "bedrock-api-key" }],
            MaxRetries = 0,
            RetryBaseDelay = TimeSpan.Zero,
        };
        if (configuredBeta is not null)
        {
            options.Headers["anthropic-beta"] = configuredBeta;
        }

        return options;
    }
}
