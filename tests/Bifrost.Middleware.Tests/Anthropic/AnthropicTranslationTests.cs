using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>Chat completions → Messages requests as the fake upstream receives them, and Messages answers → chat completions.</summary>
public sealed class AnthropicTranslationTests : AnthropicTestBase
{
    [Fact]
    public async Task Request_is_translated_to_the_Messages_API_as_received_upstream()
    {
        await using var host = await StartHostAsync();
        var body = JsonNode.Parse("""
        {
          "model": "anthropic/claude-sonnet-4-5",
          "messages": [
            { "role": "system", "content": "You are terse." },
            { "role": "developer", "content": [ { "type": "text", "text": "Answer in English.", "cache_control": { "type": "ephemeral" } } ] },
            { "role": "user", "content": [
                { "type": "text", "text": "What is in these images?" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgo=" } },
                { "type": "image_url", "image_url": { "url": "https://example.com/cat.jpg", "detail": "high" } } ] },
            { "role": "assistant", "content": "Let me check the weather.", "tool_calls": [
                { "id": "toolu_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } },
                { "id": "toolu_2", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } } ] },
            { "role": "tool", "tool_call_id": "toolu_1", "content": "21C" },
            { "role": "tool", "tool_call_id": "toolu_2", "content": [ { "type": "text", "text": "3C" } ] },
            { "role": "user", "content": "Thanks. Summarize." }
          ],
          "tools": [ { "type": "function", "function": { "name": "get_weather", "description": "Weather for a city",
                       "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": [ "city" ] } } } ],
          "tool_choice": { "type": "function", "function": { "name": "get_weather" } },
          "parallel_tool_calls": false,
          "stop": [ "END" ],
          "temperature": 0.3,
          "top_p": 0.9,
          "user": "user-7",
          "top_k": 5,
          "seed": 1,
          "presence_penalty": 0.5,
          "metadata": { "team": "a" }
        }
        """)!.AsObject();

        await ChatAsync(host, body);

        var recorded = Assert.Single(Upstream.MessageRequests);
        Assert.Equal("sk-ant-test", recorded.Headers["x-api-key"]);
        Assert.Equal("2023-06-01", recorded.Headers["anthropic-version"]);
        Assert.False(recorded.Headers.ContainsKey("authorization"));
        var expected = JsonNode.Parse("""
        {
          "model": "claude-sonnet-4-5",
          "max_tokens": 4096,
          "messages": [
            { "role": "user", "content": [
                { "type": "text", "text": "What is in these images?" },
                { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo=" } },
                { "type": "image", "source": { "type": "url", "url": "https://example.com/cat.jpg" } } ] },
            { "role": "assistant", "content": [
                { "type": "text", "text": "Let me check the weather." },
                { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "city": "Paris" } },
                { "type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": { "city": "Oslo" } } ] },
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_1", "content": [ { "type": "text", "text": "21C" } ] },
                { "type": "tool_result", "tool_use_id": "toolu_2", "content": [ { "type": "text", "text": "3C" } ] },
                { "type": "text", "text": "Thanks. Summarize." } ] }
          ],
          "system": [
            { "type": "text", "text": "You are terse." },
            { "type": "text", "text": "Answer in English.", "cache_control": { "type": "ephemeral" } }
          ],
          "temperature": 0.3,
          "top_p": 0.9,
          "stop_sequences": [ "END" ],
          "tools": [ { "name": "get_weather", "description": "Weather for a city",
                       "input_schema": { "type": "object", "properties": { "city": { "type": "string" } }, "required": [ "city" ] } } ],
          "tool_choice": { "type": "tool", "name": "get_weather", "disable_parallel_tool_use": true },
          "metadata": { "user_id": "user-7" },
          "top_k": 5
        }
        """);
        Assert.True(JsonNode.DeepEquals(expected, recorded.Body), $"Upstream body:\n{recorded.Body}");
    }

    [Theory]
    [InlineData("\"auto\"", """{"type":"auto"}""")]
    [InlineData("\"required\"", """{"type":"any"}""")]
    [InlineData("\"none\"", """{"type":"none"}""")]
    [InlineData("""{"type":"function","function":{"name":"lookup"}}""", """{"type":"tool","name":"lookup"}""")]
    public async Task Tool_choice_maps_to_Anthropic(string toolChoice, string expected)
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject
        {
            ["model"] = "anthropic/claude-sonnet-4-5",
            ["messages"] = Messages(User("hi")),
            ["tools"] = JsonNode.Parse("""[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{}}}}]"""),
            ["tool_choice"] = JsonNode.Parse(toolChoice),
        };

        await ChatAsync(host, body);

        var sent = Assert.Single(Upstream.MessageRequests).Body!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), sent["tool_choice"]), $"tool_choice: {sent["tool_choice"]}");
    }

    [Fact]
    public async Task Max_tokens_defaults_to_4096_or_the_provider_setting_and_explicit_limits_win()
    {
        await using (var host = await StartHostAsync())
        {
            await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("a")) });
            await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("b")), ["max_tokens"] = 100 });
            await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("c")), ["max_tokens"] = 100, ["max_completion_tokens"] = 200 });
        }

        await using (var host = await StartHostAsync(p => p.DefaultMaxTokens = 1000))
        {
            await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("d")) });
        }

        Assert.Equal([4096, 100, 200, 1000], Upstream.MessageRequests.Select(r => r.Body!["max_tokens"]!.GetValue<int>()));
    }

    [Theory]
    [InlineData("minimal", null, 1024, 4096 + 1024)]
    [InlineData("low", null, 2048, 4096 + 2048)]
    [InlineData("medium", null, 8192, 4096 + 8192)]
    [InlineData("high", null, 16384, 4096 + 16384)]
    [InlineData("high", 5000, 4999, 5000)]
    [InlineData("medium", 1000, null, 1000)]
    [InlineData("none", null, null, 4096)]
    public async Task Reasoning_effort_becomes_a_thinking_budget(string effort, int? maxCompletionTokens, int? budget, int maxTokens)
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("think")), ["reasoning_effort"] = effort };
        if (maxCompletionTokens is { } max)
        {
            body["max_completion_tokens"] = max;
        }

        await ChatAsync(host, body);

        var sent = Assert.Single(Upstream.MessageRequests).Body!;
        Assert.Equal(maxTokens, sent["max_tokens"]!.GetValue<int>());
        if (budget is null)
        {
            Assert.Null(sent["thinking"]);
        }
        else
        {
            Assert.Equal("enabled", sent["thinking"]!["type"]!.GetValue<string>());
            Assert.Equal(budget, sent["thinking"]!["budget_tokens"]!.GetValue<int>());
        }
    }

    [Fact]
    public async Task A_callers_own_thinking_object_is_forwarded()
    {
        await using var host = await StartHostAsync();
        await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("x")), ["thinking"] = JsonNode.Parse("""{"type":"enabled","budget_tokens":3000}""") });

        var sent = Assert.Single(Upstream.MessageRequests).Body!;
        Assert.Equal(3000, sent["thinking"]!["budget_tokens"]!.GetValue<int>());
        Assert.Equal(4096 + 3000, sent["max_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task Response_translates_text_tool_calls_thinking_finish_reason_and_cache_usage()
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(
            new JsonArray(
                new JsonObject { ["type"] = "thinking", ["thinking"] = "The user wants weather.", ["signature"] = "sig-1" },
                new JsonObject { ["type"] = "redacted_thinking", ["data"] = "opaque" },
                FakeAnthropicUpstream.TextBlock("Checking"),
                FakeAnthropicUpstream.TextBlock(" now."),
                new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_9", ["name"] = "get_weather", ["input"] = new JsonObject { ["city"] = "Paris" } }),
            stopReason: "tool_use",
            input: 10,
            output: 20,
            cacheCreation: 5,
            cacheRead: 100);
        await using var host = await StartHostAsync();

        var json = await ChatAsync(host, new JsonObject { ["model"] = "anthropic/claude-sonnet-4-5", ["messages"] = Messages(User("weather?")) });

        Assert.StartsWith("msg_fake_", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal("claude-sonnet-4-5", json.GetProperty("model").GetString());
        var choice = json.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("Checking now.", message.GetProperty("content").GetString());
        Assert.Equal("The user wants weather.", message.GetProperty("reasoning").GetString());
        var details = message.GetProperty("reasoning_details");
        Assert.Equal("reasoning.text", details[0].GetProperty("type").GetString());
        Assert.Equal("sig-1", details[0].GetProperty("signature").GetString());
        Assert.Equal("reasoning.encrypted", details[1].GetProperty("type").GetString());
        Assert.Equal("opaque", details[1].GetProperty("data").GetString());
        var call = message.GetProperty("tool_calls")[0];
        Assert.Equal("toolu_9", call.GetProperty("id").GetString());
        Assert.Equal("function", call.GetProperty("type").GetString());
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("""{"city":"Paris"}""", call.GetProperty("function").GetProperty("arguments").GetString());
        var usage = json.GetProperty("usage");
        Assert.Equal(115, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(20, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(135, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(100, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(5, usage.GetProperty("prompt_tokens_details").GetProperty("cache_creation_tokens").GetInt32());
        Assert.Equal("anthropic", json.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    [Fact]
    public async Task Tool_calling_round_trip_through_the_gateway()
    {
        Upstream.Respond = request =>
        {
            var last = request["messages"]!.AsArray()[^1]!["content"]![0]!;
            if (last["type"]!.GetValue<string>() != "tool_result")
            {
                return FakeAnthropicUpstream.Message(
                    new JsonArray(FakeAnthropicUpstream.TextBlock("Let me check."), new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_42", ["name"] = "get_weather", ["input"] = new JsonObject { ["city"] = "Paris" } }),
                    "tool_use");
            }

            Assert.Equal("toolu_42", last["tool_use_id"]!.GetValue<string>());
            return FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("It is " + last["content"]![0]!["text"]!.GetValue<string>() + " in Paris.")));
        };
        await using var host = await StartHostAsync();
        var tools = JsonNode.Parse("""[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]""")!;
        var messages = Messages(User("Weather in Paris?"));

        var first = await ChatAsync(host, new JsonObject { ["model"] = "anthropic/claude-sonnet-4-5", ["messages"] = messages.DeepClone(), ["tools"] = tools.DeepClone() });
        var message = first.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("tool_calls", first.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var call = message.GetProperty("tool_calls")[0];

        messages.Add(JsonNode.Parse(message.GetRawText()));
        messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = call.GetProperty("id").GetString(), ["content"] = "21°C" });
        var second = await ChatAsync(host, new JsonObject { ["model"] = "anthropic/claude-sonnet-4-5", ["messages"] = messages, ["tools"] = tools.DeepClone() });

        Assert.Equal("It is 21°C in Paris.", second.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var replayed = Upstream.MessageRequests.Last().Body!["messages"]![1]!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            { "role": "assistant", "content": [
              { "type": "text", "text": "Let me check." },
              { "type": "tool_use", "id": "toolu_42", "name": "get_weather", "input": { "city": "Paris" } } ] }
            """), replayed), replayed.ToJsonString());
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("refusal", "content_filter")]
    public async Task Stop_reasons_map_to_finish_reasons(string stopReason, string finishReason)
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("x")), stopReason);
        await using var host = await StartHostAsync();

        var json = await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("x")) });

        Assert.Equal(finishReason, json.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Signed_reasoning_sent_back_on_an_assistant_turn_becomes_thinking_blocks_first()
    {
        await using var host = await StartHostAsync();
        var assistant = JsonNode.Parse("""
            { "role": "assistant", "content": null,
              "reasoning_details": [ { "type": "reasoning.text", "text": "plan", "signature": "sig-1" }, { "type": "reasoning.encrypted", "data": "opaque" } ],
              "tool_calls": [ { "id": "toolu_1", "type": "function", "function": { "name": "f", "arguments": "" } } ] }
            """)!;
        var tool = JsonNode.Parse("""{ "role": "tool", "tool_call_id": "toolu_1", "content": "ok" }""")!;

        await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("go"), assistant, tool) });

        var turn = Assert.Single(Upstream.MessageRequests).Body!["messages"]![1]!;
        var expected = JsonNode.Parse("""
            { "role": "assistant", "content": [
              { "type": "thinking", "thinking": "plan", "signature": "sig-1" },
              { "type": "redacted_thinking", "data": "opaque" },
              { "type": "tool_use", "id": "toolu_1", "name": "f", "input": {} } ] }
            """);
        Assert.True(JsonNode.DeepEquals(expected, turn), turn.ToJsonString());
    }

    [Fact]
    public async Task Reasoning_details_of_unknown_shapes_are_skipped_not_a_500()
    {
        await using var host = await StartHostAsync();
        var assistant = JsonNode.Parse("""
            { "role": "assistant", "content": "a", "reasoning_details": [ { "type": 5 }, { "type": null }, 7, { "type": "reasoning.text", "signature": 1 } ] }
            """)!;

        await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("go"), assistant, User("again")) });

        var turn = Assert.Single(Upstream.MessageRequests).Body!["messages"]![1]!;
        Assert.DoesNotContain("thinking", turn.ToJsonString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model":"anthropic/m","n":2,"messages":[{"role":"user","content":"x"}]}""", "n")]
    [InlineData("""{"model":"anthropic/m","logprobs":true,"messages":[{"role":"user","content":"x"}]}""", "logprobs")]
    [InlineData("""{"model":"anthropic/m","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}""", "response_format")]
    [InlineData("""{"model":"anthropic/m","messages":[{"role":"function","name":"f","content":"x"}]}""", "messages[0].role")]
    [InlineData("""{"model":"anthropic/m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}""", "messages[0].content[0].type")]
    [InlineData("""{"model":"anthropic/m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}""", "messages[0].content[0].image_url.url")]
    [InlineData("""{"model":"anthropic/m","messages":[{"role":"assistant","content":"x","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}""", "messages[0].tool_calls[0].function.arguments")]
    public async Task What_Anthropic_cannot_take_is_a_400_before_any_upstream_call(string request, string param)
    {
        await using var host = await StartHostAsync();

        var json = await ChatAsync(host, JsonNode.Parse(request)!.AsObject(), HttpStatusCode.BadRequest);

        Assert.Equal(param, json.GetProperty("error").GetProperty("param").GetString());
        Assert.Empty(Upstream.MessageRequests);
    }

    [Fact]
    public async Task Count_tokens_runs_natively_on_count_tokens()
    {
        Upstream.CountTokensResult = 321;
        await using var host = await StartHostAsync();
        var body = """
            { "model": "anthropic/claude-sonnet-4-5", "instructions": "Be brief.",
              "input": [ { "role": "user", "content": "How many tokens is this?" } ],
              "tools": [ { "type": "function", "name": "lookup", "description": "Look up", "parameters": { "type": "object", "properties": {} } } ] }
            """;

        using var response = await host.PostJsonAsync("/openai/v1/responses/input_tokens", body, Ct);
        var json = await Infrastructure.GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(321, json.GetProperty("input_tokens").GetInt32());
        Assert.Equal("native", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        var sent = Assert.Single(Upstream.Requests, r => r.Path == "/v1/messages/count_tokens").Body!;
        var expected = JsonNode.Parse("""
            { "model": "claude-sonnet-4-5",
              "messages": [ { "role": "user", "content": [ { "type": "text", "text": "How many tokens is this?" } ] } ],
              "system": [ { "type": "text", "text": "Be brief." } ],
              "tools": [ { "name": "lookup", "description": "Look up", "input_schema": { "type": "object", "properties": {} } } ] }
            """);
        Assert.True(JsonNode.DeepEquals(expected, sent), sent.ToJsonString());
    }

    [Fact]
    public async Task Responses_api_requests_run_on_Anthropic_through_the_chat_mapping()
    {
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("Bonjour.")), input: 7, output: 2);
        await using var host = await StartHostAsync();

        using var response = await host.PostJsonAsync("/openai/v1/responses", """{"model":"anthropic/claude-sonnet-4-5","instructions":"Answer in French.","input":"Hello","max_output_tokens":50}""", Ct);
        var json = await Infrastructure.GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Bonjour.", json.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(7, json.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        var sent = Assert.Single(Upstream.MessageRequests).Body!;
        Assert.Equal(50, sent["max_tokens"]!.GetValue<int>());
        Assert.Equal("Answer in French.", sent["system"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task Models_are_listed_from_every_page_of_v1_models()
    {
        await using var host = await StartHostAsync();

        var models = await host.Client.GetFromJsonAsync<JsonElement>("/openai/v1/models", Ct);

        var ids = models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Where(id => id!.StartsWith("anthropic/", StringComparison.Ordinal)).ToList();
        Assert.Equal(["anthropic/claude-opus-4-1", "anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"], ids);
        Assert.Equal(2, Upstream.Requests.Count(r => r.Path == "/v1/models"));
        Assert.Contains(Upstream.Requests, r => r.Path == "/v1/models" && r.Query.Contains("after_id=claude-sonnet-4-5", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Configured_headers_and_base_url_with_v1_are_honoured()
    {
        await using var host = await StartHostAsync(p =>
        {
            p.BaseUrl = Upstream.BaseUrl + "/v1/";
            p.Headers["anthropic-beta"] = "prompt-caching-2024-07-31";
            p.Headers["anthropic-version"] = "2099-01-01";
        });

        await ChatAsync(host, new JsonObject { ["model"] = "anthropic/m", ["messages"] = Messages(User("x")) });

        var recorded = Assert.Single(Upstream.MessageRequests);
        Assert.Equal("prompt-caching-2024-07-31", recorded.Headers["anthropic-beta"]);
        Assert.Equal("2099-01-01", recorded.Headers["anthropic-version"]);
    }
}
