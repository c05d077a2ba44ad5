using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Anthropic;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>
/// The Anthropic-compatible inbound routes (<c>MapBifrostAnthropic</c>) over HTTP: Messages requests converted to the
/// gateway's chat operation and back, against the local provider and the fake Anthropic upstream.
/// </summary>
public sealed class AnthropicInboundTests : AnthropicTestBase
{
    private const string MessagesPath = "/anthropic/v1/messages";

    [Fact]
    public async Task A_text_message_through_the_local_provider_answers_in_Anthropic_shape_with_the_chat_usage_split_back()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);
        const string Body = """{"model":"local/echo","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Hello there friend"}]}""";

        using var response = await host.PostAsync(MessagesPath, Body);
        var json = await Json(response, HttpStatusCode.OK);

        Assert.StartsWith("msg_", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("message", json.GetProperty("type").GetString());
        Assert.Equal("assistant", json.GetProperty("role").GetString());
        Assert.Equal("echo", json.GetProperty("model").GetString());
        var block = Assert.Single(json.GetProperty("content").EnumerateArray().ToList());
        Assert.Equal("text", block.GetProperty("type").GetString());
        Assert.Equal("Hello there friend", block.GetProperty("text").GetString());
        Assert.Equal("end_turn", json.GetProperty("stop_reason").GetString());

        // The same conversation as a chat completion: Anthropic's input/output tokens are its prompt/completion tokens.
        using var chat = await host.PostAsync("/openai/v1/chat/completions", """{"model":"local/echo","max_tokens":64,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello there friend"}]}""");
        var usage = (await Json(chat, HttpStatusCode.OK)).GetProperty("usage");
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), json.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("completion_tokens").GetInt32(), json.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal(0, json.GetProperty("usage").GetProperty("cache_read_input_tokens").GetInt32());
    }

    [Fact]
    public async Task A_request_for_Anthropic_through_a_chat_only_adapter_reaches_it_translated_and_its_answer_comes_back_block_for_block()
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(
            new JsonArray(
                new JsonObject { ["type"] = "thinking", ["thinking"] = "Think.", ["signature"] = "sig-7" },
                FakeAnthropicUpstream.TextBlock("Looking it up."),
                new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_5", ["name"] = "lookup", ["input"] = new JsonObject { ["q"] = "bifrost" } }),
            stopReason: "tool_use",
            input: 30,
            output: 44,
            cacheCreation: 2,
            cacheRead: 8);
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);
        const string Body = """
            {"model":"viachat/claude-sonnet-4-5","max_tokens":300,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
             "messages":[
               {"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
               {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"png"}}]},
               {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"a PNG header"},{"type":"text","text":"and now?"}]}],
             "tools":[{"name":"lookup","description":"Looks up","input_schema":{"type":"object","properties":{"q":{"type":"string"}}}}],
             "tool_choice":{"type":"any","disable_parallel_tool_use":true},
             "stop_sequences":["STOP"],"temperature":0.3,"top_k":5,"metadata":{"user_id":"user-9"}}
            """;

        using var response = await host.PostAsync(MessagesPath, Body);
        var json = await Json(response, HttpStatusCode.OK);

        var sent = Upstream.MessageRequests.Single().Body!;
        Assert.Equal("claude-sonnet-4-5", sent["model"]!.GetValue<string>());
        Assert.Equal(300, sent["max_tokens"]!.GetValue<int>());
        Assert.Equal("""[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}]""", sent["system"]!.ToJsonString());
        var turns = sent["messages"]!.AsArray();
        Assert.Equal(3, turns.Count);
        Assert.Equal("""{"type":"text","text":"What is this?"}""", turns[0]!["content"]![0]!.ToJsonString());
        Assert.Equal("""{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}""", turns[0]!["content"]![1]!.ToJsonString());
        Assert.Equal("""{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"png"}}]}""", turns[1]!.ToJsonString());
        Assert.Equal("""{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"a PNG header"}]},{"type":"text","text":"and now?"}]}""", turns[2]!.ToJsonString());
        Assert.Equal("""[{"name":"lookup","description":"Looks up","input_schema":{"type":"object","properties":{"q":{"type":"string"}}}}]""", sent["tools"]!.ToJsonString());
        Assert.Equal("""{"type":"any","disable_parallel_tool_use":true}""", sent["tool_choice"]!.ToJsonString());
        Assert.Equal("""["STOP"]""", sent["stop_sequences"]!.ToJsonString());
        Assert.Equal(0.3, sent["temperature"]!.GetValue<double>(), 6);
        Assert.Equal(5, sent["top_k"]!.GetValue<int>());
        Assert.Equal("user-9", sent["metadata"]!["user_id"]!.GetValue<string>());

        Assert.StartsWith("msg_fake_", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("claude-sonnet-4-5", json.GetProperty("model").GetString());
        var content = json.GetProperty("content").EnumerateArray().ToList();
        Assert.Equal(["thinking", "text", "tool_use"], content.Select(b => b.GetProperty("type").GetString()));
        Assert.Equal("Think.", content[0].GetProperty("thinking").GetString());
        Assert.Equal("sig-7", content[0].GetProperty("signature").GetString());
        Assert.Equal("Looking it up.", content[1].GetProperty("text").GetString());
        Assert.Equal("toolu_5", content[2].GetProperty("id").GetString());
        Assert.Equal("lookup", content[2].GetProperty("name").GetString());
        Assert.Equal("""{"q":"bifrost"}""", content[2].GetProperty("input").GetRawText());
        Assert.Equal("""{"type":"direct"}""", content[2].GetProperty("caller").GetRawText());
        Assert.Equal("tool_use", json.GetProperty("stop_reason").GetString());
        var usage = json.GetProperty("usage");
        Assert.Equal(30, usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(44, usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(2, usage.GetProperty("cache_creation_input_tokens").GetInt32());
        Assert.Equal(8, usage.GetProperty("cache_read_input_tokens").GetInt32());
    }

    [Fact]
    public async Task A_signed_thinking_turn_is_replayed_to_Anthropic_and_thinking_becomes_a_budget()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);
        const string Body = """
            {"model":"viachat/claude-sonnet-4-5","max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":2000},
             "messages":[{"role":"user","content":"hi"},
               {"role":"assistant","content":[{"type":"thinking","thinking":"Hmm.","signature":"sig-1"},{"type":"text","text":"Hello."}]},
               {"role":"user","content":"again"}]}
            """;

        using var response = await host.PostAsync(MessagesPath, Body);
        await Json(response, HttpStatusCode.OK);

        var sent = Upstream.MessageRequests.Single().Body!;
        Assert.Equal("""{"role":"assistant","content":[{"type":"thinking","thinking":"Hmm.","signature":"sig-1"},{"type":"text","text":"Hello."}]}""", sent["messages"]![1]!.ToJsonString());
        Assert.Equal("""{"type":"enabled","budget_tokens":2048}""", sent["thinking"]!.ToJsonString()); // reasoning_effort low
    }

    [Fact]
    public async Task A_stream_is_Anthropics_event_sequence_with_thinking_text_and_tool_input_deltas()
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(
            new JsonArray(
                new JsonObject { ["type"] = "thinking", ["thinking"] = "Think.", ["signature"] = "sig-7" },
                FakeAnthropicUpstream.TextBlock("Looking."),
                new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_5", ["name"] = "lookup", ["input"] = new JsonObject { ["q"] = "bifrost" } }),
            stopReason: "tool_use",
            input: 30,
            output: 44,
            cacheRead: 8);
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"viachat/claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"go"}]}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = ParseEvents(await response.Content.ReadAsStringAsync(Ct));

        Assert.All(events, e => Assert.Equal(e.Name, e.Data.GetProperty("type").GetString()));
        // The tool's input arrives as one or more input_json_delta events (as the upstream split it).
        var inputDeltas = events.Skip(10).TakeWhile(e => e.Name == "content_block_delta").ToList();
        Assert.NotEmpty(inputDeltas);
        Assert.Equal(
            ["message_start", "ping",
             "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
             "content_block_start", "content_block_delta", "content_block_stop",
             "content_block_start", .. inputDeltas.Select(e => e.Name), "content_block_stop",
             "message_delta", "message_stop"],
            events.Select(e => e.Name));
        var start = events[0].Data.GetProperty("message");
        Assert.StartsWith("msg_fake_", start.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("assistant", start.GetProperty("role").GetString());
        Assert.Equal("""{"type":"thinking","thinking":"","signature":""}""", events[2].Data.GetProperty("content_block").GetRawText());
        Assert.Equal("""{"type":"thinking_delta","thinking":"Think."}""", events[3].Data.GetProperty("delta").GetRawText());
        Assert.Equal("""{"type":"signature_delta","signature":"sig-7"}""", events[4].Data.GetProperty("delta").GetRawText());
        Assert.Equal(1, events[6].Data.GetProperty("index").GetInt32());
        Assert.Equal("""{"type":"text_delta","text":"Looking."}""", events[7].Data.GetProperty("delta").GetRawText());
        Assert.Equal("""{"type":"tool_use","id":"toolu_5","name":"lookup","input":{},"caller":{"type":"direct"}}""", events[9].Data.GetProperty("content_block").GetRawText());
        Assert.All(inputDeltas, e => Assert.Equal("input_json_delta", e.Data.GetProperty("delta").GetProperty("type").GetString()));
        Assert.All(inputDeltas, e => Assert.Equal(2, e.Data.GetProperty("index").GetInt32()));
        Assert.Equal("""{"q":"bifrost"}""", string.Concat(inputDeltas.Select(e => e.Data.GetProperty("delta").GetProperty("partial_json").GetString())));
        Assert.Equal(2, events[^3].Data.GetProperty("index").GetInt32());
        var delta = events[^2].Data;
        Assert.Equal("tool_use", delta.GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.Equal(30, delta.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(44, delta.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal(8, delta.GetProperty("usage").GetProperty("cache_read_input_tokens").GetInt32());
    }

    [Fact]
    public async Task An_error_after_the_stream_started_is_one_error_event_in_Anthropics_envelope()
    {
        Upstream.RawStream = message =>
        [
            .. FakeAnthropicUpstream.Events(message).Take(4), // message_start, ping, content_block_start, first text delta
            FakeAnthropicUpstream.Sse(FakeAnthropicUpstream.Error("overloaded_error", "Overloaded")),
        ];
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello there friend"}]}""");
        var events = ParseEvents(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("message_start", events[0].Name);
        Assert.Contains(events, e => e.Name == "content_block_delta");
        var last = events[^1];
        Assert.Equal("error", last.Name);
        Assert.Equal("""{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""", last.Data.GetRawText());
        Assert.DoesNotContain(events, e => e.Name == "message_stop");
    }

    [Theory]
    [InlineData("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request_error", "max_tokens")]
    [InlineData("""{"model":"local/echo","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request_error", "max_tokens")]
    [InlineData("""{"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request_error", "model")]
    [InlineData("""{"model":"local/echo","max_tokens":10,"messages":[]}""", 400, "invalid_request_error", "messages")]
    [InlineData("""{"model":"local/echo","max_tokens":10,"messages":[{"role":"system","content":"hi"}]}""", 400, "invalid_request_error", "role")]
    [InlineData("""{"model":"local/echo","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}""", 400, "invalid_request_error", "Source type")]
    [InlineData("""{"model":"local/echo","max_tokens":10,"thinking":{"type":"enabled"},"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request_error", "budget_tokens")]
    [InlineData("""{"model":"local/echo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]""", 400, "invalid_request_error", "JSON")]
    [InlineData("""{"model":"local/echo","max_tokens":"10","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request_error", "max_tokens")]
    [InlineData("""{"model":"local/echo","max_tokens":10,"fallbacks":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"],"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request_error", "fallbacks")]
    [InlineData("""{"model":"local/echo","max_tokens":10,"fallbacks":"local/echo","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request_error", "fallbacks")]
    public async Task Bad_requests_are_refused_in_Anthropics_error_envelope(string body, int status, string type, string mentions)
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, body);
        var json = await Json(response, (HttpStatusCode)status);

        Assert.Equal("error", json.GetProperty("type").GetString());
        Assert.Equal(type, json.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains(mentions, json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task An_upstream_overload_keeps_its_status_and_type_and_its_retry_after()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(529, "overloaded_error", "Overloaded right now", TimeSpan.FromSeconds(7)));
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""");
        var json = await Json(response, (HttpStatusCode)529);

        Assert.Equal("""{"type":"error","error":{"type":"overloaded_error","message":"Overloaded right now"}}""", json.GetRawText());
        Assert.Equal("7", response.Headers.GetValues("Retry-After").Single());
    }

    [Theory]
    [InlineData("GET", "/anthropic/v1/messages", 405)]
    [InlineData("POST", "/anthropic/v1/complete", 404)]
    public async Task Other_routes_under_the_prefix_answer_in_Anthropics_envelope(string method, string path, int status)
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Ct);
        var json = await Json(response, (HttpStatusCode)status);

        Assert.Equal(status == 404 ? "not_found_error" : "invalid_request_error", json.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Count_tokens_asks_the_anthropic_provider_and_answers_input_tokens()
    {
        Upstream.CountTokensResult = 57;
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath + "/count_tokens", """{"model":"viachat/claude-sonnet-4-5","system":"Be brief.","messages":[{"role":"user","content":"Count me"}]}""");
        var json = await Json(response, HttpStatusCode.OK);

        Assert.Equal("""{"input_tokens":57}""", json.GetRawText());
        var sent = Upstream.Requests.Single(r => r.Path == "/v1/messages/count_tokens").Body!;
        Assert.Equal("claude-sonnet-4-5", sent["model"]!.GetValue<string>());
        Assert.Equal("Be brief.", sent["system"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("Count me", sent["messages"]![0]!["content"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task Count_tokens_on_the_local_provider_counts_like_the_gateways_own_count_route()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath + "/count_tokens", """{"model":"local/echo","messages":[{"role":"user","content":"Count these five words please"}]}""");
        var json = await Json(response, HttpStatusCode.OK);
        using var own = await host.PostAsync("/openai/v1/responses/input_tokens", """{"model":"local/echo","messages":[{"role":"user","content":"Count these five words please"}]}""");
        var expected = (await Json(own, HttpStatusCode.OK)).GetProperty("input_tokens").GetInt32();

        Assert.True(expected > 0);
        Assert.Equal(expected, json.GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task With_governance_on_x_api_key_carries_the_virtual_key_and_a_missing_one_is_an_authentication_error()
    {
        const string Key = "sk-bf-anthropic-inbound-1";
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o =>
        {
            o.Governance.Mode = GovernanceMode.Required;
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = Key });
        });
        const string Body = """{"model":"local/echo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""";

        using var missing = await host.PostAsync(MessagesPath, Body, apiKey: "sk-ant-not-a-virtual-key");
        var refused = await Json(missing, HttpStatusCode.Unauthorized);
        Assert.Equal("authentication_error", refused.GetProperty("error").GetProperty("type").GetString());

        using var wrong = await host.PostAsync(MessagesPath, Body, apiKey: "sk-bf-unknown");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);

        using var accepted = await host.PostAsync(MessagesPath, Body, apiKey: Key);
        Assert.Equal("hi", (await Json(accepted, HttpStatusCode.OK)).GetProperty("content")[0].GetProperty("text").GetString());
    }

    internal static async Task<JsonElement> Json(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(expected == response.StatusCode, $"Expected {expected}, got {response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    internal static List<(string Name, JsonElement Data)> ParseEvents(string body)
    {
        var events = new List<(string, JsonElement)>();
        foreach (var block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("event: ", lines[0], StringComparison.Ordinal);
            Assert.StartsWith("data: ", lines[1], StringComparison.Ordinal);
            events.Add((lines[0]["event: ".Length..], JsonDocument.Parse(lines[1]["data: ".Length..]).RootElement.Clone()));
        }

        return events;
    }

    /// <summary>A host with the local provider (default) and an <c>anthropic</c> provider on the fake, <c>MapBifrost</c> and <c>MapBifrostAnthropic</c>.</summary>
    internal sealed class InboundHost : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private InboundHost(WebApplication app)
        {
            _app = app;
            Client = app.GetTestServer().CreateClient();
        }

        public HttpClient Client { get; }

        public IServiceProvider Services => _app.Services;

        public static async Task<InboundHost> StartAsync(string anthropicBaseUrl, Action<BifrostOptions>? configure = null)
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
            builder.WebHost.UseTestServer();
            builder.Logging.ClearProviders();
            builder.Services.AddBifrost(options =>
            {
                options.DefaultProvider = "local";

                // The Anthropic adapter behind a chat-only adapter: the /anthropic routes convert through chat for it (no native passthrough).
                options.Providers["viachat"] = new ProviderOptions
                {
                    BaseUrl = anthropicBaseUrl,
                    Keys = [new ProviderKeyOptions { Value = "sk-ant-test" }],
                    MaxRetries = 0,
                    RetryBaseDelay = TimeSpan.Zero,
                };
                options.Providers["local"] = new ProviderOptions { Type = "local" };
                options.Providers["anthropic"] = new ProviderOptions
                {
                    Type = "anthropic",
                    BaseUrl = anthropicBaseUrl,
                    Keys = [new ProviderKeyOptions { Value = "sk-ant-test" }],
                    MaxRetries = 0,
                    RetryBaseDelay = TimeSpan.Zero,
                };
                configure?.Invoke(options);
            }).AddProvider("viachat", static services => new ChatOnlyAdapter(services.GetRequiredService<AnthropicAdapter>()));
            var app = builder.Build();
            app.MapBifrost("/openai");
            app.MapBifrostAnthropic();
            await app.StartAsync();
            return new InboundHost(app);
        }

        public Task<HttpResponseMessage> PostAsync(string path, string json, string? apiKey = null)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("anthropic-version", "2023-06-01");
            if (apiKey is not null)
            {
                request.Headers.TryAddWithoutValidation("x-api-key", apiKey);
            }

            return Client.SendAsync(request, Ct);
        }

        public Task<HttpResponseMessage> SendAsync(string path, string json, params (string Name, string Value)[] headers)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            return Client.SendAsync(request, Ct);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    /// <summary>Serves chat (and token counting) through the Anthropic adapter without being an <see cref="IAnthropicMessagesAdapter"/>.</summary>
    private sealed class ChatOnlyAdapter(AnthropicAdapter inner) : IProviderAdapter
    {
        public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
            inner.ChatCompletionAsync(context, request, cancellationToken);

        public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
            inner.StreamChatCompletionAsync(context, request, cancellationToken);

        public Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
            inner.CountInputTokensAsync(context, request, cancellationToken);
    }
}
