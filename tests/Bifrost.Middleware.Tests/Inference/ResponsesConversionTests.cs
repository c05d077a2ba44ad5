using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>
/// The Responses API on a provider that only speaks chat completions (an OpenAI-compatible fake upstream, NativeResponses
/// false): what the upstream receives (Responses → chat) and what the caller gets back (chat → Responses), sync and streamed.
/// </summary>
public sealed class ResponsesConversionTests : IAsyncLifetime
{
    private const string Path = "/openai/v1/responses";
    private ChatOnlyUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await ChatOnlyUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    private Task<GatewayHost> StartAsync() => StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
    {
        Type = "openai",
        BaseUrl = _upstream.BaseUrl,
        NativeResponses = false,
        MaxRetries = 0,
        Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
    });

    private JsonObject OnlyChatRequest()
    {
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/chat/completions", sent.Path);
        Assert.Equal("Bearer sk-upstream", sent.Authorization);
        return sent.Body!;
    }

    [Fact]
    public async Task The_request_maps_to_chat_completions_as_documented()
    {
        await using var host = await StartAsync();
        var schema = JsonNode.Parse("""{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"],"additionalProperties":false}""")!;
        var parameters = JsonNode.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""")!;
        await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "compat/gpt-test",
            ["instructions"] = "You are terse.",
            ["input"] = new JsonArray(
                new JsonObject { ["role"] = "developer", ["content"] = "Use metric units." },
                new JsonObject { ["type"] = "message", ["role"] = "user", ["content"] = new JsonArray(
                    new JsonObject { ["type"] = "input_text", ["text"] = "Weather in Oslo?" },
                    new JsonObject { ["type"] = "input_image", ["image_url"] = "https://example.com/oslo.png", ["detail"] = "low" }) },
                new JsonObject { ["type"] = "message", ["role"] = "assistant", ["content"] = new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = "Let me check.", ["annotations"] = new JsonArray() }) },
                new JsonObject { ["type"] = "function_call", ["call_id"] = "call_a", ["name"] = "get_weather", ["arguments"] = """{"city":"Oslo"}""" },
                new JsonObject { ["type"] = "function_call", ["call_id"] = "call_b", ["name"] = "get_time", ["arguments"] = """{"city":"Oslo"}""" },
                new JsonObject { ["type"] = "function_call_output", ["call_id"] = "call_a", ["output"] = """{"celsius":3}""" },
                new JsonObject { ["type"] = "function_call_output", ["call_id"] = "call_b", ["output"] = "12:00" },
                new JsonObject { ["type"] = "reasoning", ["id"] = "rs_1", ["summary"] = new JsonArray() },
                new JsonObject { ["role"] = "user", ["content"] = "Thanks. Summarize." }),
            ["tools"] = new JsonArray(
                new JsonObject { ["type"] = "function", ["name"] = "get_weather", ["description"] = "Weather by city", ["parameters"] = parameters.DeepClone(), ["strict"] = true },
                new JsonObject { ["type"] = "function", ["name"] = "get_time", ["parameters"] = parameters.DeepClone() }),
            ["tool_choice"] = new JsonObject { ["type"] = "function", ["name"] = "get_weather" },
            ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_schema", ["name"] = "reply", ["schema"] = schema.DeepClone(), ["strict"] = true } },
            ["max_output_tokens"] = 321,
            ["reasoning"] = new JsonObject { ["effort"] = "low" },
            ["temperature"] = 0.3,
            ["top_p"] = 0.9,
            ["parallel_tool_calls"] = false,
            ["user"] = "user-1",
            ["metadata"] = new JsonObject { ["trace"] = "t-1" },
            ["safety_identifier"] = "safe-1",
            ["fallbacks"] = new JsonArray("local/echo"),
        });

        var chat = OnlyChatRequest();
        Assert.Equal("gpt-test", chat["model"]!.GetValue<string>());
        Assert.Null(chat["stream"]);
        Assert.Null(chat["fallbacks"]);
        Assert.Null(chat["input"]);
        Assert.Null(chat["instructions"]);
        Assert.Null(chat["max_output_tokens"]);
        Assert.Null(chat["text"]);
        Assert.Null(chat["reasoning"]);

        var expectedMessages = JsonNode.Parse("""
            [
              {"role":"system","content":"You are terse."},
              {"role":"developer","content":"Use metric units."},
              {"role":"user","content":[{"type":"text","text":"Weather in Oslo?"},{"type":"image_url","image_url":{"url":"https://example.com/oslo.png","detail":"low"}}]},
              {"role":"assistant","content":"Let me check."},
              {"role":"assistant","tool_calls":[
                {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
                {"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"city\":\"Oslo\"}"}}]},
              {"role":"tool","tool_call_id":"call_a","content":"{\"celsius\":3}"},
              {"role":"tool","tool_call_id":"call_b","content":"12:00"},
              {"role":"user","content":"Thanks. Summarize."}
            ]
            """)!;
        AssertSameJson(expectedMessages, chat["messages"]!);

        var expectedTools = new JsonArray(
            new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "get_weather", ["description"] = "Weather by city", ["parameters"] = parameters.DeepClone(), ["strict"] = true } },
            new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "get_time", ["parameters"] = parameters.DeepClone() } });
        AssertSameJson(expectedTools, chat["tools"]!);
        AssertSameJson(JsonNode.Parse("""{"type":"function","function":{"name":"get_weather"}}""")!, chat["tool_choice"]!);
        AssertSameJson(new JsonObject { ["type"] = "json_schema", ["json_schema"] = new JsonObject { ["name"] = "reply", ["schema"] = schema.DeepClone(), ["strict"] = true } }, chat["response_format"]!);

        Assert.Equal(321, chat["max_completion_tokens"]!.GetValue<int>());
        Assert.Null(chat["max_tokens"]);
        Assert.Equal("low", chat["reasoning_effort"]!.GetValue<string>());
        Assert.Equal(0.3, chat["temperature"]!.GetValue<double>());
        Assert.Equal(0.9, chat["top_p"]!.GetValue<double>());
        Assert.False(chat["parallel_tool_calls"]!.GetValue<bool>());
        Assert.Equal("user-1", chat["user"]!.GetValue<string>());
        Assert.Equal("t-1", chat["metadata"]!["trace"]!.GetValue<string>());
        Assert.Equal("safe-1", chat["safety_identifier"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_string_input_is_one_user_message_and_json_object_format_maps_too()
    {
        await using var host = await StartAsync();
        await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "compat/gpt-test",
            ["input"] = "Just this.",
            ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_object" } },
            ["tool_choice"] = "required",
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["name"] = "f", ["parameters"] = new JsonObject { ["type"] = "object" } }),
        });
        var chat = OnlyChatRequest();
        AssertSameJson(JsonNode.Parse("""[{"role":"user","content":"Just this."}]""")!, chat["messages"]!);
        AssertSameJson(JsonNode.Parse("""{"type":"json_object"}""")!, chat["response_format"]!);
        Assert.Equal("required", chat["tool_choice"]!.GetValue<string>());
        Assert.Null(chat["max_completion_tokens"]);
        Assert.Null(chat["reasoning_effort"]);
    }

    [Fact]
    public async Task The_chat_answer_maps_back_to_a_response_with_message_and_function_call_items_and_usage()
    {
        _upstream.ChatReply = request => ChatOnlyUpstream.Completion(request, "Checking both.", "tool_calls", new JsonArray(
            new JsonObject { ["id"] = "call_x", ["type"] = "function", ["function"] = new JsonObject { ["name"] = "get_weather", ["arguments"] = """{"city":"Oslo"}""" } },
            new JsonObject { ["id"] = "call_y", ["type"] = "function", ["function"] = new JsonObject { ["name"] = "get_time", ["arguments"] = "{}" } }));
        await using var host = await StartAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "compat/gpt-test", ["input"] = "Weather and time in Oslo?", ["instructions"] = "Use tools." });

        Assert.Equal("response", json.GetProperty("object").GetString());
        Assert.Equal("completed", json.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("incomplete_details").ValueKind);
        Assert.Equal("gpt-test", json.GetProperty("model").GetString());
        Assert.Equal(1_700_000_000, json.GetProperty("created_at").GetInt64());
        Assert.Equal("Use tools.", json.GetProperty("instructions").GetString());
        Assert.Equal("compat", json.GetProperty("extra_fields").GetProperty("provider").GetString());

        var output = json.GetProperty("output").EnumerateArray().ToList();
        Assert.Equal(["message", "function_call", "function_call"], output.Select(o => o.GetProperty("type").GetString()));
        Assert.Equal("Checking both.", output[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("assistant", output[0].GetProperty("role").GetString());
        Assert.Equal(["call_x", "call_y"], output.Skip(1).Select(o => o.GetProperty("call_id").GetString()));
        Assert.Equal(["get_weather", "get_time"], output.Skip(1).Select(o => o.GetProperty("name").GetString()));
        Assert.Equal(["""{"city":"Oslo"}""", "{}"], output.Skip(1).Select(o => o.GetProperty("arguments").GetString()));
        Assert.All(output, o => Assert.Equal("completed", o.GetProperty("status").GetString()));
        Assert.Equal(3, output.Select(o => o.GetProperty("id").GetString()).Distinct().Count());

        var usage = json.GetProperty("usage");
        Assert.Equal(11, usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(7, usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(18, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Cached_and_reasoning_token_details_are_carried_over()
    {
        _upstream.ChatReply = request =>
        {
            var completion = ChatOnlyUpstream.Completion(request, "ok", "stop");
            completion["usage"] = JsonNode.Parse("""{"prompt_tokens":100,"completion_tokens":40,"total_tokens":140,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":32}}""");
            return completion;
        };
        await using var host = await StartAsync();
        var usage = (await host.PostOkAsync(Path, new JsonObject { ["model"] = "compat/o-test", ["input"] = "think" })).GetProperty("usage");
        Assert.Equal(100, usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(64, usage.GetProperty("input_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(40, usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(32, usage.GetProperty("output_tokens_details").GetProperty("reasoning_tokens").GetInt32());
    }

    [Fact]
    public async Task Finish_reason_length_becomes_status_incomplete_for_max_output_tokens()
    {
        _upstream.ChatReply = request => ChatOnlyUpstream.Completion(request, "This is cut", "length");
        await using var host = await StartAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "compat/gpt-test", ["input"] = "Write a novel.", ["max_output_tokens"] = 16 });

        Assert.Equal("incomplete", json.GetProperty("status").GetString());
        Assert.Equal("max_output_tokens", json.GetProperty("incomplete_details").GetProperty("reason").GetString());
        Assert.Equal(16, json.GetProperty("max_output_tokens").GetInt32());
        Assert.Equal("This is cut", json.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(16, OnlyChatRequest()["max_completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task Streaming_text_converts_chat_chunks_to_the_responses_event_sequence()
    {
        _upstream.ChatStream = request => ChatOnlyUpstream.TextChunks(request, ["Hel", "lo", ", ", "world"], "stop");
        await using var host = await StartAsync();
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "compat/gpt-test", ["input"] = "Greet.", ["stream"] = true });
        var events = await ReadEventStreamAsync(response);

        ResponsesTests.AssertTextEventOrder(events);
        Assert.Equal(["Hel", "lo", ", ", "world"], events.Where(e => e.Type == "response.output_text.delta").Select(e => e.Data.GetProperty("delta").GetString()));
        var completed = events[^1].Data.GetProperty("response");
        Assert.Equal("Hello, world", completed.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(9, completed.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(3, completed.GetProperty("usage").GetProperty("output_tokens").GetInt32());

        // Upstream: a streaming chat request that asks for usage.
        var chat = OnlyChatRequest();
        Assert.True(chat["stream"]!.GetValue<bool>());
        Assert.True(chat["stream_options"]!["include_usage"]!.GetValue<bool>());
        AssertSameJson(JsonNode.Parse("""[{"role":"user","content":"Greet."}]""")!, chat["messages"]!);
    }

    [Fact]
    public async Task Streaming_tool_call_deltas_become_function_call_argument_events()
    {
        _upstream.ChatStream = request =>
        [
            ChatOnlyUpstream.Chunk(request, new JsonObject { ["role"] = "assistant", ["content"] = null }, null),
            ToolDelta(request, 0, "call_w", "get_weather", string.Empty),
            ToolDelta(request, 0, null, null, """{"ci"""),
            ToolDelta(request, 0, null, null, """ty":"Oslo"}"""),
            ToolDelta(request, 1, "call_t", "get_time", "{}"),
            ChatOnlyUpstream.Chunk(request, new JsonObject(), "tool_calls"),
            ChatOnlyUpstream.UsageChunk(request, 20, 10),
        ];
        await using var host = await StartAsync();
        using var response = await host.PostAsync(Path, new JsonObject
        {
            ["model"] = "compat/gpt-test",
            ["input"] = "Weather and time?",
            ["stream"] = true,
            ["tools"] = new JsonArray(
                new JsonObject { ["type"] = "function", ["name"] = "get_weather", ["parameters"] = new JsonObject { ["type"] = "object" } },
                new JsonObject { ["type"] = "function", ["name"] = "get_time", ["parameters"] = new JsonObject { ["type"] = "object" } }),
        });
        var events = await ReadEventStreamAsync(response);
        var types = events.Select(e => e.Type).ToList();

        Assert.Equal("response.created", types[0]);
        Assert.Equal("response.in_progress", types[1]);
        Assert.Equal("response.completed", types[^1]);
        Assert.DoesNotContain("response.output_text.delta", types);
        var numbers = events.Select(e => e.Data.GetProperty("sequence_number").GetInt32()).ToList();
        Assert.Equal(Enumerable.Range(0, numbers.Count), numbers);

        // Per call: added (in progress, no arguments yet), argument deltas, arguments done, item done — in that order.
        foreach (var (callId, name, outputIndex, deltas, arguments) in new[]
        {
            ("call_w", "get_weather", 0, new[] { """{"ci""", """ty":"Oslo"}""" }, """{"city":"Oslo"}"""),
            ("call_t", "get_time", 1, new[] { "{}" }, "{}"),
        })
        {
            var added = events.FindIndex(e => e.Type == "response.output_item.added" && e.Data.GetProperty("output_index").GetInt32() == outputIndex);
            Assert.True(added > 1);
            var item = events[added].Data.GetProperty("item");
            Assert.Equal("function_call", item.GetProperty("type").GetString());
            Assert.Equal(callId, item.GetProperty("call_id").GetString());
            Assert.Equal(name, item.GetProperty("name").GetString());
            Assert.Equal("in_progress", item.GetProperty("status").GetString());
            var itemId = item.GetProperty("id").GetString();

            var deltaEvents = events.Select((e, i) => (e, i)).Where(x => x.e.Type == "response.function_call_arguments.delta" && x.e.Data.GetProperty("item_id").GetString() == itemId).ToList();
            Assert.Equal(deltas, deltaEvents.Select(x => x.e.Data.GetProperty("delta").GetString()));
            Assert.All(deltaEvents, x => Assert.Equal(outputIndex, x.e.Data.GetProperty("output_index").GetInt32()));
            var done = events.FindIndex(e => e.Type == "response.function_call_arguments.done" && e.Data.GetProperty("item_id").GetString() == itemId);
            Assert.Equal(arguments, events[done].Data.GetProperty("arguments").GetString());
            var itemDone = events.FindIndex(e => e.Type == "response.output_item.done" && e.Data.GetProperty("output_index").GetInt32() == outputIndex);
            Assert.Equal(arguments, events[itemDone].Data.GetProperty("item").GetProperty("arguments").GetString());
            Assert.Equal("completed", events[itemDone].Data.GetProperty("item").GetProperty("status").GetString());
            Assert.True(added < deltaEvents[0].i && deltaEvents[^1].i < done && done < itemDone, $"order: added {added}, deltas {deltaEvents[0].i}..{deltaEvents[^1].i}, done {done}, item done {itemDone}");
        }

        var completed = events[^1].Data.GetProperty("response");
        var output = completed.GetProperty("output").EnumerateArray().ToList();
        Assert.Equal(["call_w", "call_t"], output.Select(o => o.GetProperty("call_id").GetString()));
        Assert.Equal(["""{"city":"Oslo"}""", "{}"], output.Select(o => o.GetProperty("arguments").GetString()));
        Assert.Equal(20, completed.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(10, completed.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal(2, OnlyChatRequest()["tools"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_streamed_finish_reason_length_ends_with_response_incomplete()
    {
        _upstream.ChatStream = request => ChatOnlyUpstream.TextChunks(request, ["cut", " short"], "length");
        await using var host = await StartAsync();
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "compat/gpt-test", ["input"] = "Go on.", ["stream"] = true, ["max_output_tokens"] = 16 });
        var events = await ReadEventStreamAsync(response);

        Assert.Equal("response.incomplete", events[^1].Type);
        var final = events[^1].Data.GetProperty("response");
        Assert.Equal("incomplete", final.GetProperty("status").GetString());
        Assert.Equal("max_output_tokens", final.GetProperty("incomplete_details").GetProperty("reason").GetString());
        Assert.Equal("cut short", final.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.DoesNotContain(events, e => e.Type == "response.completed");
    }

    [Fact]
    public async Task Unsupported_features_are_refused_before_the_upstream_is_called()
    {
        await using var host = await StartAsync();
        await host.PostErrorAsync(Path, new JsonObject { ["model"] = "compat/gpt-test", ["input"] = "hi", ["previous_response_id"] = "resp_1" }, 400, "unsupported_parameter", "previous_response_id");
        await host.PostErrorAsync(Path, JsonNode.Parse("""{"model":"compat/gpt-test","input":"hi","tools":[{"type":"web_search"}]}""")!, 400, "unsupported_parameter", "tools[0].type");
        await host.PostErrorAsync(Path, JsonNode.Parse("""{"model":"compat/gpt-test","input":"hi","background":true}""")!, 400, "unsupported_parameter", "background");
        await host.PostErrorAsync(Path, JsonNode.Parse("""{"model":"compat/gpt-test","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}""")!, 400, "unsupported_parameter", "input[0].content[0]");
        Assert.Empty(_upstream.Requests);
    }

    private static JsonObject ToolDelta(JsonObject request, int index, string? id, string? name, string arguments)
    {
        var function = new JsonObject { ["arguments"] = arguments };
        if (name is not null)
        {
            function["name"] = name;
        }

        var call = new JsonObject { ["index"] = index, ["function"] = function };
        if (id is not null)
        {
            call["id"] = id;
            call["type"] = "function";
        }

        return ChatOnlyUpstream.Chunk(request, new JsonObject { ["tool_calls"] = new JsonArray(call) }, null);
    }
}
