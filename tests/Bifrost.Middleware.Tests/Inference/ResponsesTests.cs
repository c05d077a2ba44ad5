using System.Text.Json;
using System.Text.Json.Nodes;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary><c>POST responses</c> through TestHost on the local provider (converted to chat): sync, the SSE event sequence, instructions, refusals of what cannot be converted.</summary>
public sealed class ResponsesTests
{
    private const string Path = "/openai/v1/responses";

    public static readonly string[] TextEventOrder =
    [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ];

    [Fact]
    public async Task A_string_input_gives_a_completed_response_with_one_assistant_message()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "Tell me a story" });

        Assert.Equal("response", json.GetProperty("object").GetString());
        Assert.StartsWith("resp_", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("completed", json.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("incomplete_details").ValueKind);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("error").ValueKind);
        Assert.True(json.GetProperty("created_at").GetInt64() > 1_600_000_000);
        Assert.Equal("echo", json.GetProperty("model").GetString());

        var message = Assert.Single(json.GetProperty("output").EnumerateArray());
        Assert.Equal("message", message.GetProperty("type").GetString());
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("completed", message.GetProperty("status").GetString());
        Assert.False(string.IsNullOrEmpty(message.GetProperty("id").GetString()));
        var part = Assert.Single(message.GetProperty("content").EnumerateArray());
        Assert.Equal("output_text", part.GetProperty("type").GetString());
        Assert.Equal("Tell me a story", part.GetProperty("text").GetString());
        Assert.Equal(JsonValueKind.Array, part.GetProperty("annotations").ValueKind);

        // The local provider: 3 + (3 + 4 words) prompt tokens, 4 completion tokens.
        var usage = json.GetProperty("usage");
        Assert.Equal(10, usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(4, usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(14, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("input_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("output_tokens_details").GetProperty("reasoning_tokens").GetInt32());

        var extra = json.GetProperty("extra_fields");
        Assert.Equal("responses", extra.GetProperty("request_type").GetString());
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("echo", extra.GetProperty("model_requested").GetString());
    }

    [Fact]
    public async Task Instructions_become_a_system_message_and_are_echoed_on_the_response()
    {
        await using var host = await StartLocalAsync();
        var without = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "hi there" });
        var with = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "hi there", ["instructions"] = "Be very brief." });

        Assert.Equal(JsonValueKind.Null, without.GetProperty("instructions").ValueKind);
        Assert.Equal("Be very brief.", with.GetProperty("instructions").GetString());

        // One more message (3 framing tokens) of 3 words reached the provider.
        Assert.Equal(without.GetProperty("usage").GetProperty("input_tokens").GetInt32() + 3 + 3, with.GetProperty("usage").GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task Item_input_with_function_call_history_is_accepted_and_answered_from_the_last_user_message()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "local/echo",
            ["input"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "What is the weather?" },
                new JsonObject { ["type"] = "function_call", ["call_id"] = "call_1", ["name"] = "get_weather", ["arguments"] = """{"city":"Oslo"}""" },
                new JsonObject { ["type"] = "function_call_output", ["call_id"] = "call_1", ["output"] = """{"celsius":3}""" },
                new JsonObject { ["type"] = "message", ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = "And tomorrow?" }) }),
            ["temperature"] = 0.25,
            ["top_p"] = 0.5,
            ["max_output_tokens"] = 50,
            ["metadata"] = new JsonObject { ["tag"] = "t1" },
        });

        Assert.Equal("And tomorrow?", json.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(0.25, json.GetProperty("temperature").GetDouble());
        Assert.Equal(0.5, json.GetProperty("top_p").GetDouble());
        Assert.Equal(50, json.GetProperty("max_output_tokens").GetInt32());
        Assert.Equal("t1", json.GetProperty("metadata").GetProperty("tag").GetString());
    }

    [Fact]
    public async Task Streaming_sends_the_responses_event_sequence_in_order()
    {
        await using var host = await StartLocalAsync();
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "one two three four", ["instructions"] = "Repeat.", ["stream"] = true });
        var events = await ReadEventStreamAsync(response);

        AssertTextEventOrder(events);
        var deltas = events.Where(e => e.Type == "response.output_text.delta").ToList();
        Assert.Equal(4, deltas.Count);

        var text = string.Concat(deltas.Select(e => e.Data.GetProperty("delta").GetString()));
        Assert.Equal("one two three four", text);
        Assert.Equal(text, events.Single(e => e.Type == "response.output_text.done").Data.GetProperty("text").GetString());
        Assert.Equal(text, events.Single(e => e.Type == "response.content_part.done").Data.GetProperty("part").GetProperty("text").GetString());
        Assert.Equal(text, events.Single(e => e.Type == "response.output_item.done").Data.GetProperty("item").GetProperty("content")[0].GetProperty("text").GetString());

        // created and in_progress carry the response in progress; completed the final one, with the same id.
        var created = events[0].Data.GetProperty("response");
        Assert.Equal("in_progress", created.GetProperty("status").GetString());
        Assert.Equal(0, created.GetProperty("output").GetArrayLength());
        Assert.Equal("Repeat.", created.GetProperty("instructions").GetString());
        var completed = events[^1].Data.GetProperty("response");
        Assert.Equal(created.GetProperty("id").GetString(), completed.GetProperty("id").GetString());
        Assert.Equal(created.GetProperty("id").GetString(), events[1].Data.GetProperty("response").GetProperty("id").GetString());
        Assert.Equal("completed", completed.GetProperty("status").GetString());
        Assert.Equal(text, completed.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(4, completed.GetProperty("usage").GetProperty("output_tokens").GetInt32());

        // Every item event names the same message item and output index 0.
        var itemId = events.Single(e => e.Type == "response.output_item.added").Data.GetProperty("item").GetProperty("id").GetString();
        Assert.All(events.Where(e => e.Data.TryGetProperty("item_id", out _)), e => Assert.Equal(itemId, e.Data.GetProperty("item_id").GetString()));
        Assert.All(events.Where(e => e.Data.TryGetProperty("output_index", out _)), e => Assert.Equal(0, e.Data.GetProperty("output_index").GetInt32()));
        Assert.Equal(itemId, completed.GetProperty("output")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task Streamed_final_response_matches_the_sync_response()
    {
        await using var host = await StartLocalAsync();
        var body = new JsonObject { ["model"] = "local/echo", ["input"] = "same either way", ["instructions"] = "Echo.", ["metadata"] = new JsonObject { ["k"] = "v" } };
        var sync = await host.PostOkAsync(Path, body.DeepClone());
        body["stream"] = true;
        using var response = await host.PostAsync(Path, body);
        var events = await ReadEventStreamAsync(response);
        var streamed = events[^1].Data.GetProperty("response");

        var expected = WithoutVolatileFields(sync).AsObject();
        expected.Remove("extra_fields");
        var actual = WithoutVolatileFields(streamed).AsObject();
        actual.Remove("extra_fields");
        AssertSameJson(expected, actual);
    }

    /// <summary>The event types in OpenAI's order for one text message; sequence numbers 0, 1, 2, ... ; deltas between the part's added and done.</summary>
    internal static void AssertTextEventOrder(List<(string Type, JsonElement Data)> events)
    {
        var collapsed = new List<string>();
        foreach (var (type, _) in events)
        {
            if (collapsed.Count == 0 || collapsed[^1] != type || type != "response.output_text.delta")
            {
                collapsed.Add(type);
            }
        }

        Assert.Equal(TextEventOrder, collapsed);
        var numbers = events.Select(e => e.Data.GetProperty("sequence_number").GetInt32()).ToList();
        for (var i = 1; i < numbers.Count; i++)
        {
            Assert.True(numbers[i] > numbers[i - 1], $"sequence_number {numbers[i]} after {numbers[i - 1]}");
        }

        Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers);
    }

    public static TheoryData<string, string> Unsupported => new()
    {
        { """{"model":"local/echo","input":"hi","previous_response_id":"resp_123"}""", "previous_response_id" },
        { """{"model":"local/echo","input":"hi","tools":[{"type":"web_search"}]}""", "tools[0].type" },
        { """{"model":"local/echo","input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object"}},{"type":"file_search","vector_store_ids":["vs_1"]}]}""", "tools[1].type" },
        { """{"model":"local/echo","input":[{"role":"user","content":[{"type":"input_text","text":"read this"},{"type":"input_file","file_id":"file-abc"}]}]}""", "input[0].content[1]" },
        { """{"model":"local/echo","input":"hi","background":true}""", "background" },
        { """{"model":"local/echo","input":"hi","conversation":"conv_1"}""", "conversation" },
        { """{"model":"local/echo","input":[{"type":"web_search_call","id":"ws_1","status":"completed"}]}""", "input[0].type" },
        { """{"model":"local/echo","input":"hi","text":{"format":{"type":"grammar"}}}""", "text.format.type" },
    };

    [Theory]
    [MemberData(nameof(Unsupported))]
    public async Task What_chat_completions_cannot_express_is_a_400_unsupported_parameter(string body, string param)
    {
        await using var host = await StartLocalAsync();
        var error = await host.PostErrorAsync(Path, JsonNode.Parse(body)!, 400, "unsupported_parameter", param);
        Assert.Equal("invalid_request_error", error.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("responses", error.GetProperty("extra_fields").GetProperty("request_type").GetString());

        // Streaming refuses it the same way, as JSON before any event.
        var streaming = JsonNode.Parse(body)!;
        streaming["stream"] = true;
        using var response = await host.PostAsync(Path, streaming);
        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        AssertError(await ReadAsync(response), 400, "unsupported_parameter", param);

        // And so does async: no job is stored for a request that can only fail.
        using var submitted = await host.PostAsync(Path, JsonNode.Parse(body)!, ("x-bf-async", "true"));
        Assert.Equal(400, (int)submitted.StatusCode);
        AssertError(await ReadAsync(submitted), 400, "unsupported_parameter", param);
    }

    [Fact]
    public async Task Explicit_defaults_of_unsupported_features_are_accepted()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, JsonNode.Parse("""{"model":"local/echo","input":"fine","background":false,"truncation":"disabled","include":[],"store":false}""")!);
        Assert.Equal("completed", json.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_missing_input_is_a_400()
    {
        await using var host = await StartLocalAsync();
        await host.PostErrorAsync(Path, new JsonObject { ["model"] = "local/echo" }, 400, "missing_required_parameter", "input");
        await host.PostErrorAsync("/openai/v1/responses/input_tokens", new JsonObject { ["model"] = "local/echo" }, 400, "missing_required_parameter", "input");
    }

    [Fact]
    public async Task A_provider_failure_after_the_stream_started_is_an_error_event()
    {
        await using var host = await StartLocalAsync();
        using var response = await host.PostAsync(Path, new JsonObject
        {
            ["model"] = "local/echo",
            ["input"] = "a b c d e",
            ["stream"] = true,
            ["metadata"] = new JsonObject { ["local_fail_after_chunks"] = "2" },
        });
        var events = await ReadEventStreamAsync(response);
        Assert.Equal("error", events[^1].Type);
        Assert.Equal("local_scripted_stream_failure", events[^1].Data.GetProperty("code").GetString());
        Assert.DoesNotContain(events, e => e.Type == "response.completed");
        var numbers = events.Select(e => e.Data.GetProperty("sequence_number").GetInt32()).ToList();
        Assert.Equal(Enumerable.Range(0, numbers.Count), numbers);
        Assert.Equal("a b", string.Concat(events.Where(e => e.Type == "response.output_text.delta").Select(e => e.Data.GetProperty("delta").GetString())));
    }
}
