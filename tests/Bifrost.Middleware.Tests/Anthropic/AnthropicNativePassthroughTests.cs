using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using static Bifrost.Middleware.Tests.Anthropic.AnthropicInboundTests;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>
/// The <c>/anthropic</c> routes on an <c>anthropic</c> provider: the caller's body is sent as written (model replaced) and
/// the provider's answer and events come back unchanged; a fallback to another provider converts through chat.
/// The fake speaks Anthropic's documented wire format (https://docs.anthropic.com/en/api/messages,
/// https://docs.anthropic.com/en/docs/build-with-claude/streaming, https://docs.anthropic.com/en/api/messages-count-tokens).
/// </summary>
public sealed class AnthropicNativePassthroughTests : AnthropicTestBase
{
    private const string MessagesPath = "/anthropic/v1/messages";

    private const string FullBody = """
        {"model":"anthropic/claude-sonnet-4-5","max_tokens":4000,
         "system":"Be brief.",
         "messages":[
           {"role":"user","content":[{"type":"text","text":"Read this.","cache_control":{"type":"ephemeral","ttl":"1h"}},
                                     {"type":"document","source":{"type":"file","file_id":"file_011"},"citations":{"enabled":true}}]},
           {"role":"assistant","content":[{"type":"thinking","thinking":"Hmm.","signature":"sig-1"},{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"x"}}]},
           {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"a result"},{"type":"search_result","source":"s","title":"t","content":[{"type":"text","text":"c"}]}]}],
         "thinking":{"type":"enabled","budget_tokens":2000},
         "metadata":{"user_id":"user-9","future":"kept"},
         "top_k":5,"service_tier":"standard_only",
         "mcp_servers":[{"type":"url","url":"https://mcp.example/sse","name":"ex"}],
         "container":"container_1",
         "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":2},{"name":"lookup","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],
         "tool_choice":{"type":"auto","disable_parallel_tool_use":true},
         "a_future_field":{"nested":[1,2,{"x":null}]}}
        """;

    [Fact]
    public async Task The_callers_body_reaches_Anthropic_as_written_with_only_the_model_replaced()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, FullBody);
        await Json(response, HttpStatusCode.OK);

        var sent = Upstream.MessageRequests.Single().Body!;
        var expected = JsonNode.Parse(FullBody)!.AsObject();
        expected["model"] = "claude-sonnet-4-5";
        Assert.True(JsonNode.DeepEquals(expected, sent), $"Sent: {sent.ToJsonString()}");
        Assert.Equal("""{"type":"enabled","budget_tokens":2000}""", sent["thinking"]!.ToJsonString()); // not mapped to an effort and back
        Assert.Equal("Be brief.", sent["system"]!.GetValue<string>()); // a string stays a string
        Assert.Equal("a result", sent["messages"]![2]!["content"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("sk-ant-test", Upstream.MessageRequests.Single().Headers["x-api-key"]);
    }

    [Fact]
    public async Task Anthropics_answer_is_relayed_unchanged_with_fields_the_gateway_does_not_know()
    {
        const string Answer = """{"id":"msg_01X","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Cited.","citations":[{"type":"char_location","cited_text":"c","document_index":0,"start_char_index":0,"end_char_index":1}]},{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}}],"stop_reason":"pause_turn","stop_sequence":null,"container":{"id":"container_1","expires_at":"2026-12-06T20:00:00Z"},"usage":{"input_tokens":30,"output_tokens":44,"cache_creation_input_tokens":2,"cache_read_input_tokens":8,"server_tool_use":{"web_search_requests":1},"service_tier":"standard"}}""";
        Upstream.RawMessage = _ => Answer;
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}""");
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Answer), JsonNode.Parse(text)), text);
    }

    [Fact]
    public async Task A_stream_relays_Anthropics_events_in_order_thinking_deltas_and_unknown_events_included()
    {
        string[] events =
        [
            """{"type":"message_start","message":{"id":"msg_01S","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":5,"output_tokens":1}}}""",
            """{"type":"ping"}""",
            """{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me "}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think."}}""",
            """{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig-9"}}""",
            """{"type":"content_block_stop","index":0}""",
            """{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"","citations":[]}}""",
            """{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"c","document_index":0,"start_char_index":0,"end_char_index":1}}}""",
            """{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Done."}}""",
            """{"type":"a_future_event","payload":{"k":[1,2]}}""",
            """{"type":"content_block_stop","index":1}""",
            """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":17}}""",
            """{"type":"message_stop"}""",
        ];
        Upstream.RawStream = _ => events.Select(e => $"event: {JsonNode.Parse(e)!["type"]}\ndata: {e}\n\n");
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":100,"stream":true,"thinking":{"type":"enabled","budget_tokens":1500},"messages":[{"role":"user","content":"go"}]}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var received = ParseEvents(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal(events.Length, received.Count);
        for (var i = 0; i < events.Length; i++)
        {
            var expected = JsonNode.Parse(events[i])!;
            Assert.Equal(expected["type"]!.GetValue<string>(), received[i].Name);
            Assert.True(JsonNode.DeepEquals(expected, JsonNode.Parse(received[i].Data.GetRawText())), $"event {i}: {received[i].Data.GetRawText()}");
        }

        var sent = Upstream.MessageRequests.Single().Body!;
        Assert.True(sent["stream"]!.GetValue<bool>());
        Assert.Equal("""{"type":"enabled","budget_tokens":1500}""", sent["thinking"]!.ToJsonString());
    }

    [Fact]
    public async Task An_Anthropic_error_answer_keeps_its_status_type_and_message()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(400, "invalid_request_error", "messages.0.content.1: unknown block type"));
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""");
        var json = await Json(response, HttpStatusCode.BadRequest);

        Assert.Equal("""{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content.1: unknown block type"}}""", json.GetRawText());
    }

    [Fact]
    public async Task A_fallback_to_a_non_Anthropic_provider_converts_through_chat_and_the_fallbacks_field_is_not_sent()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(529, "overloaded_error", "Overloaded"));
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","fallbacks":["local/echo"],"max_tokens":64,"messages":[{"role":"user","content":"Hello there friend"}]}""");
        var json = await Json(response, HttpStatusCode.OK);

        var sent = Upstream.MessageRequests.Single().Body!;
        Assert.False(sent.ContainsKey("fallbacks"));
        Assert.Equal("claude-sonnet-4-5", sent["model"]!.GetValue<string>());
        Assert.Equal("message", json.GetProperty("type").GetString());
        Assert.Equal("echo", json.GetProperty("model").GetString());
        Assert.Equal("Hello there friend", json.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("end_turn", json.GetProperty("stop_reason").GetString());
        Assert.True(json.GetProperty("usage").GetProperty("input_tokens").GetInt32() > 0);
    }

    [Fact]
    public async Task A_stream_falls_back_to_a_converting_provider_before_its_first_event()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(529, "overloaded_error", "Overloaded"));
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","fallbacks":["local/echo"],"max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello"}]}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = ParseEvents(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal(["message_start", "ping", "content_block_start"], events.Take(3).Select(e => e.Name));
        Assert.Equal(["content_block_stop", "message_delta", "message_stop"], events.TakeLast(3).Select(e => e.Name));
        Assert.Equal("Hello", string.Concat(events.Where(e => e.Name == "content_block_delta").Select(e => e.Data.GetProperty("delta").GetProperty("text").GetString())));
    }

    [Fact]
    public async Task Count_tokens_sends_the_callers_body_as_written_to_Anthropic()
    {
        Upstream.CountTokensResult = 61;
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);
        const string Body = """{"model":"anthropic/claude-sonnet-4-5","system":"Be brief.","messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"file_9"}}]}],"mcp_servers":[{"type":"url","url":"https://mcp.example","name":"m"}]}""";

        using var response = await host.PostAsync(MessagesPath + "/count_tokens", Body);
        var json = await Json(response, HttpStatusCode.OK);

        Assert.Equal("""{"input_tokens":61}""", json.GetRawText());
        var sent = Upstream.Requests.Single(r => r.Path == "/v1/messages/count_tokens").Body!;
        var expected = JsonNode.Parse(Body)!.AsObject();
        expected["model"] = "claude-sonnet-4-5";
        Assert.True(JsonNode.DeepEquals(expected, sent), sent.ToJsonString());
    }

    [Fact]
    public async Task Async_submit_answers_the_pending_message_and_the_poll_answers_Anthropics_message()
    {
        Upstream.RawMessage = _ => """{"id":"msg_async","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Later."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}""";
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var submit = await host.SendAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""", ("x-bf-async", "true"));
        var pending = await Json(submit, HttpStatusCode.OK);
        var id = pending.GetProperty("id").GetString()!;
        Assert.True(Guid.TryParse(id, out _), id);
        Assert.Equal("message", pending.GetProperty("type").GetString());
        Assert.Equal("claude-sonnet-4-5", pending.GetProperty("model").GetString());
        Assert.Equal(0, pending.GetProperty("content").GetArrayLength());

        var result = await PollAsync(host, id);
        Assert.Equal("""{"id":"msg_async","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Later."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}""", result.GetRawText());
        Assert.Single(Upstream.MessageRequests);
    }

    [Fact]
    public async Task A_failed_async_job_is_polled_as_Anthropics_error_and_async_refuses_streams_and_unknown_jobs()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(403, "permission_error", "Not for you"));
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var submit = await host.SendAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""", ("x-bf-async", "true"));
        var id = (await Json(submit, HttpStatusCode.OK)).GetProperty("id").GetString()!;
        HttpResponseMessage? poll = null;
        for (var i = 0; i < 200; i++)
        {
            poll?.Dispose();
            poll = await host.SendAsync(MessagesPath, "{}", ("x-bf-async-id", id));
            if (poll.StatusCode != HttpStatusCode.OK)
            {
                break;
            }

            await Task.Delay(20, Ct);
        }

        using (poll)
        {
            var error = await Json(poll!, HttpStatusCode.Forbidden);
            Assert.Equal("""{"type":"error","error":{"type":"permission_error","message":"Not for you"}}""", error.GetRawText());
        }

        using var stream = await host.SendAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}""", ("x-bf-async", "true"));
        Assert.Equal("invalid_request_error", (await Json(stream, HttpStatusCode.BadRequest)).GetProperty("error").GetProperty("type").GetString());

        using var unknown = await host.SendAsync(MessagesPath, "{}", ("x-bf-async-id", "00000000-0000-0000-0000-000000000000"));
        Assert.Equal("not_found_error", (await Json(unknown, HttpStatusCode.NotFound)).GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Usage_and_cost_come_from_Anthropics_usage_like_the_same_call_as_a_chat_completion()
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("ok")), input: 30, output: 44, cacheCreation: 2, cacheRead: 8);
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var native = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}""");
        await Json(native, HttpStatusCode.OK);
        using var chat = await host.Client.PostAsync("/openai/v1/chat/completions", new StringContent("""{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);

        var entries = await LogAsync(host);
        var messages = Assert.Single(entries, e => e.Operation == "anthropic_messages");
        var completion = Assert.Single(entries, e => e.Operation == "chat_completion");
        Assert.Equal("anthropic", messages.Provider);
        Assert.Equal(200, messages.Status);
        Assert.Equal(40, messages.InputTokens); // input + cache reads + cache writes, as the gateway counts
        Assert.Equal(44, messages.OutputTokens);
        Assert.NotNull(messages.CostUsd);
        Assert.True(messages.CostUsd > 0);
        Assert.Equal(completion.InputTokens, messages.InputTokens);
        Assert.Equal(completion.CostUsd, messages.CostUsd);
    }

    [Fact]
    public async Task A_native_streams_usage_is_message_starts_input_and_message_deltas_output()
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("streamed")), input: 25, output: 17, cacheRead: 5);
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.PostAsync(MessagesPath, """{"model":"anthropic/claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("message_stop", ParseEvents(await response.Content.ReadAsStringAsync(Ct))[^1].Name);

        var entry = Assert.Single(await LogAsync(host), e => e.Operation == "anthropic_messages_stream");
        Assert.Equal(30, entry.InputTokens);
        Assert.Equal(17, entry.OutputTokens);
        Assert.True(entry.CostUsd > 0);
        Assert.NotNull(entry.TimeToFirstChunkMs);
    }

    private static async Task<List<Bifrost.Middleware.RequestLog.RequestLogEntry>> LogAsync(InboundHost host)
    {
        var log = host.Services.GetRequiredService<Bifrost.Middleware.RequestLog.IBifrostRequestLog>();
        await log.FlushAsync(Ct);
        var page = await log.QueryAsync(new Bifrost.Middleware.RequestLog.RequestLogQuery { Limit = 100 }, Ct);
        return [.. page.Entries];
    }

    private static async Task<JsonElement> PollAsync(InboundHost host, string id)
    {
        for (var i = 0; i < 200; i++)
        {
            using var poll = await host.SendAsync(MessagesPath, "{}", ("x-bf-async-id", id));
            var json = await Json(poll, HttpStatusCode.OK);
            if (json.GetProperty("content").GetArrayLength() > 0)
            {
                return json;
            }

            await Task.Delay(20, Ct);
        }

        throw new TimeoutException("The async job did not finish.");
    }
}
