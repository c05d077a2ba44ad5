using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>Chat completions ↔ Cohere v2 chat: the JSON sent upstream and the answer read back, through the gateway's HTTP endpoint.</summary>
public sealed class CohereTranslationTests : CohereTestBase
{
    [Fact]
    public async Task A_chat_request_is_sent_to_v2_chat_with_the_bearer_key_and_the_answer_is_a_chat_completion()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("hello there")) });

        var sent = Assert.Single(Upstream.ChatRequests);
        Assert.Equal("POST", sent.Method);
        Assert.Equal("Bearer " + Key, sent.Headers["authorization"]);
        Assert.Equal("command-a-03-2025", sent.Body!["model"]!.GetValue<string>());
        Assert.Equal("""[{"role":"user","content":"hello there"}]""", sent.Body["messages"]!.ToJsonString());
        Assert.Null(sent.Body["stream"]);
        Assert.StartsWith("chat_fake_", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal("command-a-03-2025", json.GetProperty("model").GetString());
        var choice = json.GetProperty("choices")[0];
        Assert.Equal("echo: hello there", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        var usage = json.GetProperty("usage");
        Assert.Equal(12, usage.GetProperty("prompt_tokens").GetInt32()); // usage.tokens, not billed_units (10)
        Assert.Equal(9, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(21, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Roles_images_tools_and_sampling_parameters_map_to_coheres_fields()
    {
        await using var host = await StartHostAsync();
        var body = JsonNode.Parse("""
            {
              "model": "cohere/command-a-03-2025",
              "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
                {"role": "user", "content": [
                  {"type": "text", "text": "What is in this picture, and the weather?"},
                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                  {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
                {"role": "assistant", "content": "A cat. It is 21 degrees."},
                {"role": "user", "content": "Thanks"}
              ],
              "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}],
              "tool_choice": "required",
              "temperature": 0.3,
              "top_p": 0.9,
              "top_k": 40,
              "max_completion_tokens": 321,
              "stop": ["END", "STOP"],
              "seed": 7,
              "frequency_penalty": 0.1,
              "presence_penalty": 0.2,
              "safety_mode": "STRICT",
              "parallel_tool_calls": false,
              "logit_bias": {"50256": -100},
              "user": "u-1"
            }
            """)!.AsObject();

        await PostAsync(host, "/openai/v1/chat/completions", body);

        var sent = Assert.Single(Upstream.ChatRequests).Body!;
        var messages = sent["messages"]!.AsArray();
        Assert.Equal("""{"role":"system","content":"Be brief."}""", messages[0]!.ToJsonString());
        Assert.Equal("""{"role":"system","content":[{"type":"text","text":"Use metric units."}]}""", messages[1]!.ToJsonString());
        Assert.Equal(
            """{"role":"user","content":[{"type":"text","text":"What is in this picture, and the weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}},{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}""",
            messages[2]!.ToJsonString());
        AssertJson("""{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}""", messages[3]);
        AssertJson("""{"role":"tool","content":"{\"temp\":21}","tool_call_id":"call_1"}""", messages[4]);
        Assert.Equal("""{"role":"assistant","content":"A cat. It is 21 degrees."}""", messages[5]!.ToJsonString());
        Assert.Equal("""{"role":"user","content":"Thanks"}""", messages[6]!.ToJsonString());
        Assert.Equal("""[{"type":"function","function":{"name":"get_weather","description":"Weather by city","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]""", sent["tools"]!.ToJsonString());
        Assert.Equal("REQUIRED", sent["tool_choice"]!.GetValue<string>());
        Assert.Equal(0.3, sent["temperature"]!.GetValue<double>());
        Assert.Equal(0.9, sent["p"]!.GetValue<double>());
        Assert.Equal(40, sent["k"]!.GetValue<int>());
        Assert.Equal(321, sent["max_tokens"]!.GetValue<int>());
        Assert.Equal("""["END","STOP"]""", sent["stop_sequences"]!.ToJsonString());
        Assert.Equal(7, sent["seed"]!.GetValue<long>());
        Assert.Equal(0.1, sent["frequency_penalty"]!.GetValue<double>());
        Assert.Equal(0.2, sent["presence_penalty"]!.GetValue<double>());
        Assert.Equal("STRICT", sent["safety_mode"]!.GetValue<string>());
        foreach (var dropped in new[] { "top_p", "top_k", "stop", "max_completion_tokens", "parallel_tool_calls", "logit_bias", "user", "tool_choice_function" })
        {
            Assert.Null(sent[dropped]);
        }
    }

    [Theory]
    [InlineData("\"none\"", "NONE", 2)]
    [InlineData("\"auto\"", null, 2)]
    [InlineData("{\"type\":\"function\",\"function\":{\"name\":\"b\"}}", "REQUIRED", 1)]
    public async Task Tool_choice_maps_to_coheres_and_a_named_function_keeps_only_that_tool(string choice, string? expected, int tools)
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject
        {
            ["model"] = "cohere/command-a-03-2025",
            ["messages"] = Messages(User("hi")),
            ["tools"] = new JsonArray(Tool("a"), Tool("b")),
            ["tool_choice"] = JsonNode.Parse(choice),
        };

        await PostAsync(host, "/openai/v1/chat/completions", body);

        var sent = Assert.Single(Upstream.ChatRequests).Body!;
        Assert.Equal(expected, sent["tool_choice"]?.GetValue<string>());
        Assert.Equal(tools, sent["tools"]!.AsArray().Count);
        if (tools == 1)
        {
            Assert.Equal("b", sent["tools"]![0]!["function"]!["name"]!.GetValue<string>());
        }
    }

    [Theory]
    [InlineData("""{"type":"json_object"}""", """{"type":"json_object"}""")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}""", """{"type":"json_object","json_schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}""")]
    public async Task Response_format_maps_to_json_object_with_the_schema_flattened(string format, string expected)
    {
        await using var host = await StartHostAsync();

        await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("hi")), ["response_format"] = JsonNode.Parse(format) });

        Assert.Equal(expected, Assert.Single(Upstream.ChatRequests).Body!["response_format"]!.ToJsonString());
    }

    [Theory]
    [InlineData("high", """{"type":"enabled","token_budget":16384}""")]
    [InlineData("low", """{"type":"enabled","token_budget":2048}""")]
    [InlineData("none", """{"type":"disabled"}""")]
    public async Task Reasoning_effort_maps_to_thinking(string effort, string expected)
    {
        await using var host = await StartHostAsync();

        await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "cohere/command-a-reasoning-08-2025", ["messages"] = Messages(User("hi")), ["reasoning_effort"] = effort });

        Assert.Equal(expected, Assert.Single(Upstream.ChatRequests).Body!["thinking"]!.ToJsonString());
    }

    [Fact]
    public async Task Tool_calls_thinking_tool_plan_and_cached_tokens_come_back_in_openai_shape()
    {
        Upstream.Respond = _ => FakeCohereUpstream.Answer(
            new JsonArray(new JsonObject { ["type"] = "thinking", ["thinking"] = "The user wants weather." }),
            "TOOL_CALL",
            input: 40,
            output: 11,
            toolCalls: new JsonArray(FakeCohereUpstream.ToolCall("get_weather_abc", "get_weather", """{"city":"Paris"}""")),
            toolPlan: "I will call get_weather.",
            cached: 16);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("weather?")), ["tools"] = new JsonArray(Tool("get_weather")) });

        var choice = json.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.TryGetProperty("content", out var content) ? content.ValueKind : JsonValueKind.Null);
        var call = message.GetProperty("tool_calls")[0];
        Assert.Equal("get_weather_abc", call.GetProperty("id").GetString());
        Assert.Equal("function", call.GetProperty("type").GetString());
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("""{"city":"Paris"}""", call.GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("I will call get_weather.\nThe user wants weather.", message.GetProperty("reasoning").GetString());
        Assert.Equal(40, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(16, json.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Theory]
    [InlineData("COMPLETE", "stop")]
    [InlineData("STOP_SEQUENCE", "stop")]
    [InlineData("MAX_TOKENS", "length")]
    public async Task Finish_reasons_map_to_openais(string cohere, string openai)
    {
        Upstream.Respond = _ => FakeCohereUpstream.Answer(new JsonArray(FakeCohereUpstream.Text("partial")), cohere);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("hi")) });

        Assert.Equal(openai, json.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Theory]
    [InlineData("ERROR", 502, "provider_generation_error")]
    [InlineData("TIMEOUT", 504, "provider_timeout")]
    public async Task A_generation_that_ended_in_error_or_timeout_is_a_provider_error(string cohere, int status, string code)
    {
        Upstream.Respond = _ => FakeCohereUpstream.Answer(new JsonArray(FakeCohereUpstream.Text("half")), cohere);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("hi")) }, (HttpStatusCode)status);

        Assert.Equal(code, json.GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("""{"n":2}""", "n")]
    [InlineData("""{"logprobs":true}""", "logprobs")]
    [InlineData("""{"reasoning_effort":"extreme"}""", "reasoning_effort")]
    [InlineData("""{"tool_choice":{"type":"function","function":{"name":"missing"}},"tools":[{"type":"function","function":{"name":"a"}}]}""", "tool_choice")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}""", "messages[0].content[0].type")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}""", "messages[0].content[0].image_url.url")]
    [InlineData("""{"messages":[{"role":"function","name":"f","content":"x"}]}""", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"tool","content":"x"}]}""", "messages[0].tool_call_id")]
    public async Task What_cohere_cannot_do_is_a_400_naming_the_parameter_and_nothing_is_sent(string overrides, string param)
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("hi")) };
        foreach (var (name, value) in JsonNode.Parse(overrides)!.AsObject())
        {
            body[name] = value?.DeepClone();
        }

        var json = await PostAsync(host, "/openai/v1/chat/completions", body, HttpStatusCode.BadRequest);

        Assert.Equal(param, json.GetProperty("error").GetProperty("param").GetString());
        Assert.Empty(Upstream.ChatRequests);
    }

    [Theory]
    [InlineData(null, "https://api.cohere.com/v2/chat")]
    [InlineData("https://api.cohere.com/", "https://api.cohere.com/v2/chat")]
    [InlineData("https://proxy.example.com/cohere/v2", "https://proxy.example.com/cohere/v2/chat")]
    [InlineData("https://proxy.example.com/cohere/v1/", "https://proxy.example.com/cohere/v2/chat")]
    public void The_endpoint_is_the_base_url_with_the_versioned_path(string? baseUrl, string expected)
    {
        var context = new ProviderContext("cohere", new ProviderOptions { Type = "cohere", BaseUrl = baseUrl }, "m", null);

        Assert.Equal(expected, Bifrost.Middleware.Providers.Cohere.CohereAdapter.Endpoint(context, "v2/chat").ToString());
    }

    private static JsonObject Tool(string name) => new()
    {
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = name, ["parameters"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() } },
    };
}
