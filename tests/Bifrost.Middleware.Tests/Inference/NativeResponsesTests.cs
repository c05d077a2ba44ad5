using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.OpenAI;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>A provider with a native Responses API (NativeResponses true) gets the request passed through, and its answer and events are relayed.</summary>
public sealed class NativeResponsesTests : IAsyncLifetime
{
    private const string Path = "/openai/v1/responses";
    private ChatOnlyUpstream _upstream = null!;

    public async ValueTask InitializeAsync()
    {
        _upstream = await ChatOnlyUpstream.StartAsync();
        _upstream.NativeResponses = true;
    }

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    private Task<GatewayHost> StartAsync() => StartLocalAsync(options => options.Providers["openai"] = new ProviderOptions
    {
        Type = "openai",
        BaseUrl = _upstream.BaseUrl,
        NativeResponses = true,
        MaxRetries = 0,
        Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
    });

    private static JsonObject UpstreamResponse(string model, string status = "completed") => JsonNode.Parse($$"""
        {
          "id": "resp_upstream_1",
          "object": "response",
          "created_at": 1741476542,
          "status": "{{status}}",
          "error": null,
          "incomplete_details": null,
          "instructions": "Be nice.",
          "max_output_tokens": null,
          "model": "{{model}}-2025-01-01",
          "output": [
            { "type": "reasoning", "id": "rs_1", "summary": [ { "type": "summary_text", "text": "Thought briefly." } ] },
            { "type": "web_search_call", "id": "ws_1", "status": "completed", "action": { "type": "search", "query": "weather oslo" } },
            { "type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
              "content": [ { "type": "output_text", "text": "Hi from native.", "annotations": [ { "type": "url_citation", "start_index": 0, "end_index": 2, "url": "https://example.com", "title": "Ex" } ] } ] }
          ],
          "parallel_tool_calls": true,
          "previous_response_id": "resp_prev",
          "reasoning": { "effort": "low", "summary": "auto" },
          "service_tier": "default",
          "store": true,
          "temperature": 1.0,
          "text": { "format": { "type": "text" }, "verbosity": "medium" },
          "tool_choice": "auto",
          "tools": [ { "type": "web_search" } ],
          "top_p": 1.0,
          "truncation": "disabled",
          "usage": { "input_tokens": 36, "input_tokens_details": { "cached_tokens": 0 }, "output_tokens": 87, "output_tokens_details": { "reasoning_tokens": 12 }, "total_tokens": 123 },
          "user": null,
          "metadata": {}
        }
        """)!.AsObject();

    [Fact]
    public async Task The_request_goes_to_the_providers_responses_api_with_the_bare_model_and_the_answer_is_relayed()
    {
        _upstream.ResponsesReply = request => UpstreamResponse(request["model"]!.GetValue<string>());
        await using var host = await StartAsync();
        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "openai/gpt-4o",
            ["input"] = "Weather in Oslo?",
            ["instructions"] = "Be nice.",
            ["previous_response_id"] = "resp_prev",
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "web_search" }),
            ["reasoning"] = new JsonObject { ["effort"] = "low", ["summary"] = "auto" },
            ["include"] = new JsonArray("reasoning.encrypted_content"),
            ["store"] = true,
            ["fallbacks"] = new JsonArray("local/echo"),
        });

        // Passed through: the Responses API, not chat completions; the bare model; features chat could not express kept.
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/responses", sent.Path);
        Assert.Equal("Bearer sk-upstream", sent.Authorization);
        var body = sent.Body!;
        Assert.Equal("gpt-4o", body["model"]!.GetValue<string>());
        Assert.Equal("Weather in Oslo?", body["input"]!.GetValue<string>());
        Assert.Equal("resp_prev", body["previous_response_id"]!.GetValue<string>());
        Assert.Equal("web_search", body["tools"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("reasoning.encrypted_content", body["include"]![0]!.GetValue<string>());
        Assert.Equal("auto", body["reasoning"]!["summary"]!.GetValue<string>());
        Assert.True(body["store"]!.GetValue<bool>());
        Assert.Null(body["fallbacks"]);
        Assert.Null(body["stream"]);

        // Relayed: the provider's response, field for field, plus extra_fields.
        var relayed = JsonNode.Parse(json.GetRawText())!.AsObject();
        var extra = relayed["extra_fields"]!;
        Assert.Equal("responses", extra["request_type"]!.GetValue<string>());
        Assert.Equal("openai", extra["provider"]!.GetValue<string>());
        Assert.Equal("gpt-4o", extra["model_requested"]!.GetValue<string>());
        relayed.Remove("extra_fields");
        AssertSameJson(UpstreamResponse("gpt-4o"), relayed);
    }

    [Fact]
    public async Task A_response_whose_instructions_are_items_is_relayed_unchanged()
    {
        // With a reusable prompt ("prompt": {"id": ...}) OpenAI answers with "instructions" as a list of input items.
        _upstream.ResponsesReply = request =>
        {
            var response = UpstreamResponse(request["model"]!.GetValue<string>());
            response["instructions"] = JsonNode.Parse("""[{"type":"message","role":"developer","content":[{"type":"input_text","text":"You are the prompt template."}]}]""");
            response["prompt"] = new JsonObject { ["id"] = "pmpt_1", ["version"] = "2", ["variables"] = new JsonObject() };
            return response;
        };
        await using var host = await StartAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "Hi", ["prompt"] = new JsonObject { ["id"] = "pmpt_1", ["version"] = "2" } });

        var relayed = JsonNode.Parse(json.GetRawText())!.AsObject();
        relayed.Remove("extra_fields");
        AssertSameJson(_upstream.ResponsesReply(new JsonObject { ["model"] = "gpt-4o" }), relayed);
        Assert.Equal("pmpt_1", Assert.Single(_upstream.Requests).Body!["prompt"]!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Input_items_whose_output_is_not_a_string_are_passed_through_unchanged()
    {
        // computer_call_output's output is a screenshot object; function_call_output's may be a list of content parts.
        _upstream.ResponsesReply = request => UpstreamResponse(request["model"]!.GetValue<string>());
        await using var host = await StartAsync();
        var input = JsonNode.Parse("""
            [
              {"type":"computer_call","id":"cu_1","call_id":"call_cu","action":{"type":"screenshot"},"pending_safety_checks":[],"status":"completed"},
              {"type":"computer_call_output","call_id":"call_cu","output":{"type":"computer_screenshot","image_url":"data:image/png;base64,iVBORw0KGgo="}},
              {"type":"function_call","call_id":"call_f","name":"look","arguments":"{}"},
              {"type":"function_call_output","call_id":"call_f","output":[{"type":"input_text","text":"it shows"},{"type":"input_image","image_url":"https://example.com/a.png"}]},
              {"type":"function_call_output","call_id":"call_g","output":"plain"}
            ]
            """)!;
        await host.PostOkAsync(Path, new JsonObject { ["model"] = "openai/computer-use-preview", ["input"] = input.DeepClone(), ["truncation"] = "auto" });

        AssertSameJson(input, Assert.Single(_upstream.Requests).Body!["input"]!);
    }

    [Fact]
    public async Task A_function_call_output_with_content_parts_is_refused_clearly_when_converted_to_chat()
    {
        _upstream.NativeResponses = false;
        await using var host = await StartLocalAsync(options => options.Providers["openai"] = new ProviderOptions { Type = "openai", BaseUrl = _upstream.BaseUrl, NativeResponses = false, MaxRetries = 0 });
        await host.PostErrorAsync(
            Path,
            JsonNode.Parse("""{"model":"openai/gpt-4o","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://example.com/a.png"}]}]}""")!,
            400,
            "unsupported_parameter",
            "input[1].output");
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task Streaming_relays_the_providers_events_in_order_and_unchanged()
    {
        List<JsonObject> upstreamEvents = [];
        _upstream.ResponsesStream = request =>
        {
            var done = UpstreamResponse(request["model"]!.GetValue<string>());
            var created = done.DeepClone().AsObject();
            created["status"] = "in_progress";
            created["output"] = new JsonArray();
            created.Remove("usage");
            upstreamEvents =
            [
                new JsonObject { ["type"] = "response.created", ["sequence_number"] = 0, ["response"] = created.DeepClone() },
                new JsonObject { ["type"] = "response.in_progress", ["sequence_number"] = 1, ["response"] = created.DeepClone() },
                new JsonObject { ["type"] = "response.output_item.added", ["sequence_number"] = 2, ["output_index"] = 0, ["item"] = JsonNode.Parse("""{"type":"reasoning","id":"rs_1","summary":[]}""") },
                new JsonObject { ["type"] = "response.reasoning_summary_text.delta", ["sequence_number"] = 3, ["item_id"] = "rs_1", ["output_index"] = 0, ["summary_index"] = 0, ["delta"] = "Thought" },
                new JsonObject { ["type"] = "response.output_text.delta", ["sequence_number"] = 4, ["item_id"] = "msg_1", ["output_index"] = 2, ["content_index"] = 0, ["delta"] = "Hi from native.", ["logprobs"] = new JsonArray() },
                new JsonObject { ["type"] = "response.output_text.annotation.added", ["sequence_number"] = 5, ["item_id"] = "msg_1", ["output_index"] = 2, ["content_index"] = 0, ["annotation_index"] = 0, ["annotation"] = new JsonObject { ["type"] = "url_citation", ["url"] = "https://example.com" } },
                new JsonObject { ["type"] = "response.completed", ["sequence_number"] = 6, ["response"] = done },
            ];
            return upstreamEvents.Select(e => e.DeepClone().AsObject());
        };
        await using var host = await StartAsync();
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "Hi", ["stream"] = true, ["previous_response_id"] = "resp_prev" });
        var events = await ReadEventStreamAsync(response);

        Assert.Equal(upstreamEvents.Count, events.Count);
        for (var i = 0; i < events.Count; i++)
        {
            Assert.Equal(upstreamEvents[i]["type"]!.GetValue<string>(), events[i].Type);

            // Relayed unchanged, plus the gateway's extra_fields (as on every stream chunk).
            var relayed = JsonNode.Parse(events[i].Data.GetRawText())!.AsObject();
            var extra = relayed["extra_fields"]!;
            Assert.Equal(i, extra["chunk_index"]!.GetValue<int>());
            Assert.Equal("responses_stream", extra["request_type"]!.GetValue<string>());
            Assert.Equal("openai", extra["provider"]!.GetValue<string>());
            relayed.Remove("extra_fields");
            AssertSameJson(upstreamEvents[i], relayed);
        }

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/responses", sent.Path);
        Assert.True(sent.Body!["stream"]!.GetValue<bool>());
        Assert.Equal("gpt-4o", sent.Body["model"]!.GetValue<string>());
        Assert.Equal("text/event-stream", sent.Accept);
    }

    [Fact]
    public async Task Async_jobs_run_natively_too()
    {
        _upstream.ResponsesReply = request => UpstreamResponse(request["model"]!.GetValue<string>());
        await using var host = await StartAsync();
        var submitted = await host.PostOkAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "Hi", ["previous_response_id"] = "resp_prev" }, ("x-bf-async", "true"));
        var id = submitted.GetProperty("id").GetString()!;
        Assert.NotEqual("resp_upstream_1", id);

        var done = await EventuallyAsync("the native job", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Post, Path, "{}", ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            return json.GetProperty("status").GetString() is "queued" or "in_progress" ? (JsonElement?)null : json;
        });
        Assert.Equal("resp_upstream_1", done!.Value.GetProperty("id").GetString());
        Assert.Equal("/v1/responses", Assert.Single(_upstream.Requests).Path);
    }

    [Fact]
    public async Task Only_native_providers_get_the_responses_api()
    {
        var adapter = new OpenAICompatibleAdapter(null!, TimeProvider.System);
        bool Native(string? baseUrl, bool? native) =>
            adapter.SupportsNativeResponses(new ProviderContext("p", new ProviderOptions { Type = "openai", BaseUrl = baseUrl, NativeResponses = native }, "m", null));

        Assert.True(Native("https://api.openai.com/v1", null));
        Assert.True(Native("https://API.OpenAI.com/v1", null));
        Assert.False(Native("https://api.openai.com/v1", false));
        Assert.False(Native("https://api.groq.com/openai/v1", null));
        Assert.False(Native("http://127.0.0.1:8000/v1", null));
        Assert.True(Native("http://127.0.0.1:8000/v1", true));

        // And a chat-only configuration really converts: the same upstream gets chat/completions.
        _upstream.NativeResponses = false;
        await using var host = await StartLocalAsync(options => options.Providers["openai"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = _upstream.BaseUrl,
            NativeResponses = false,
            MaxRetries = 0,
        });
        await host.PostOkAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "Hi" });
        Assert.Equal("/v1/chat/completions", Assert.Single(_upstream.Requests).Path);
    }
}
