using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Presets;

/// <summary>
/// Each documented quirk, asserted on the JSON the fake upstream received (sources in OpenAIPresets, per preset), and the
/// refusals answered as a Bifrost 400 without calling the provider.
/// </summary>
public sealed class PresetQuirkTests : PresetTestBase
{
    private static JsonObject Assistant(string content, params (string Name, JsonNode? Value)[] fields)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = content };
        foreach (var (name, value) in fields)
        {
            message[name] = value;
        }

        return message;
    }

    private static JsonObject ToolCall(string id) => new()
    {
        ["id"] = id,
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = "lookup", ["arguments"] = "{}" },
    };

    private static JsonArray Tools() => new(new JsonObject
    {
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = "lookup", ["parameters"] = new JsonObject { ["type"] = "object" } },
    });

    [Fact]
    public async Task Every_preset_drops_OpenAI_only_fields_and_sends_max_completion_tokens_as_max_tokens()
    {
        await using var host = await StartAsync("groq");

        await ChatAsync(host, Chat(
            "groq/m",
            ("max_completion_tokens", 300),
            ("store", true),
            ("prediction", new JsonObject { ["type"] = "content", ["content"] = "x" }),
            ("prompt_cache_key", "k"),
            ("verbosity", "low"),
            ("web_search_options", new JsonObject()),
            ("temperature", 0.5)));

        var body = SentBody();
        Assert.Equal(300, body.GetProperty("max_tokens").GetInt32());
        foreach (var dropped in (string[])["max_completion_tokens", "store", "prediction", "prompt_cache_key", "verbosity", "web_search_options"])
        {
            Assert.False(Has(body, dropped), dropped);
        }

        Assert.Equal(0.5, body.GetProperty("temperature").GetDouble());
    }

    [Fact]
    public async Task An_explicit_max_tokens_wins_over_max_completion_tokens()
    {
        await using var host = await StartAsync("together");

        await ChatAsync(host, Chat("together/m", ("max_tokens", 10), ("max_completion_tokens", 300)));

        var body = SentBody();
        Assert.Equal(10, body.GetProperty("max_tokens").GetInt32());
        Assert.False(Has(body, "max_completion_tokens"));
    }

    [Fact]
    public async Task The_openai_type_still_forwards_every_field_unchanged()
    {
        await using var host = await StartAsync("openai", configure: p => p.BaseUrl = Upstream.BaseUrl);

        await ChatAsync(host, Chat("openai/m", ("max_completion_tokens", 300), ("store", true), ("logprobs", true), ("seed", 3)));

        var body = SentBody();
        Assert.Equal(300, body.GetProperty("max_completion_tokens").GetInt32());
        Assert.False(Has(body, "max_tokens"));
        Assert.True(body.GetProperty("store").GetBoolean());
        Assert.True(body.GetProperty("logprobs").GetBoolean());
        Assert.Equal(3, body.GetProperty("seed").GetInt32());
    }

    [Fact]
    public async Task Groq_drops_logprobs_logit_bias_and_message_names()
    {
        await using var host = await StartAsync("groq");
        var request = Chat("groq/m", ("logprobs", true), ("top_logprobs", 2), ("logit_bias", new JsonObject { ["1"] = 5 }), ("n", 1));
        request["messages"]![0]!["name"] = "alice";

        await ChatAsync(host, request);

        var body = SentBody();
        Assert.False(Has(body, "logprobs"));
        Assert.False(Has(body, "top_logprobs"));
        Assert.False(Has(body, "logit_bias"));
        Assert.Equal(1, body.GetProperty("n").GetInt32());
        Assert.False(Has(body.GetProperty("messages")[0], "name"));
        Assert.Equal("Hi", body.GetProperty("messages")[0].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Groq_refuses_more_than_one_choice_with_a_400_without_calling_it()
    {
        await using var host = await StartAsync("groq");

        var json = await ChatAsync(host, Chat("groq/m", ("n", 2)), HttpStatusCode.BadRequest);

        var error = json.GetProperty("error");
        Assert.Equal("unsupported_parameter", error.GetProperty("code").GetString());
        Assert.Equal("n", error.GetProperty("param").GetString());
        Assert.Contains("'groq' supports only n = 1", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Mistral_renames_seed_maps_a_named_tool_choice_to_any_and_reasoning_effort_to_high()
    {
        await using var host = await StartAsync("mistral");

        await ChatAsync(host, Chat(
            "mistral/mistral-large-latest",
            ("seed", 42),
            ("tools", Tools()),
            ("tool_choice", new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "lookup" } }),
            ("reasoning_effort", "low"),
            ("max_completion_tokens", 50)));

        var body = SentBody();
        Assert.Equal(42, body.GetProperty("random_seed").GetInt32());
        Assert.False(Has(body, "seed"));
        Assert.Equal("any", body.GetProperty("tool_choice").GetString());
        Assert.Equal("high", body.GetProperty("reasoning_effort").GetString());
        Assert.Equal(50, body.GetProperty("max_tokens").GetInt32());
        Assert.Equal("lookup", body.GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Mistral_keeps_a_string_tool_choice_and_reasoning_effort_none()
    {
        await using var host = await StartAsync("mistral");

        await ChatAsync(host, Chat("mistral/m", ("tools", Tools()), ("tool_choice", "required"), ("reasoning_effort", "none")));

        var body = SentBody();
        Assert.Equal("required", body.GetProperty("tool_choice").GetString());
        Assert.Equal("none", body.GetProperty("reasoning_effort").GetString());
    }

    [Theory]
    [InlineData("grok-4", true, true)]
    [InlineData("grok-3-mini", true, false)]
    [InlineData("grok-3", false, false)]
    public async Task Xai_drops_penalties_and_stop_for_reasoning_models(string model, bool reasoningModel, bool dropsEffort)
    {
        await using var host = await StartAsync("xai");

        await ChatAsync(host, Chat("xai/" + model, ("presence_penalty", 0.5), ("frequency_penalty", 0.5), ("stop", new JsonArray("END")), ("reasoning_effort", "low")));

        var body = SentBody();
        Assert.Equal(!reasoningModel, Has(body, "presence_penalty"));
        Assert.Equal(!reasoningModel, Has(body, "frequency_penalty"));
        Assert.Equal(!reasoningModel, Has(body, "stop"));
        Assert.Equal(!dropsEffort, Has(body, "reasoning_effort"));
    }

    [Fact]
    public async Task DeepSeek_drops_replayed_reasoning_on_plain_turns_and_replays_it_on_tool_call_turns()
    {
        await using var host = await StartAsync("deepseek");
        var request = Chat("deepseek/deepseek-reasoner", ("logprobs", true), ("top_logprobs", 1));
        var messages = request["messages"]!.AsArray();
        messages.Add(Assistant("4", ("reasoning_content", "2+2"), ("reasoning", "2+2")));
        messages.Add(new JsonObject { ["role"] = "user", ["content"] = "look it up" });
        messages.Add(Assistant(string.Empty, ("tool_calls", new JsonArray(ToolCall("call_1"))), ("reasoning", "need the tool")));
        messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_1", ["content"] = "42" });

        await ChatAsync(host, request);

        var body = SentBody();
        var sent = body.GetProperty("messages");
        Assert.False(Has(sent[1], "reasoning_content"));
        Assert.False(Has(sent[1], "reasoning"));
        Assert.Equal("need the tool", sent[3].GetProperty("reasoning_content").GetString());
        Assert.False(Has(sent[3], "reasoning"));
        Assert.Equal("call_1", sent[3].GetProperty("tool_calls")[0].GetProperty("id").GetString());
        Assert.False(Has(body, "logprobs"));
        Assert.False(Has(body, "top_logprobs"));
    }

    [Fact]
    public async Task DeepSeek_chat_model_keeps_logprobs()
    {
        await using var host = await StartAsync("deepseek");

        await ChatAsync(host, Chat("deepseek/deepseek-chat", ("logprobs", true)));

        Assert.True(SentBody().GetProperty("logprobs").GetBoolean());
    }

    [Fact]
    public async Task DeepSeek_reasoning_content_is_answered_in_the_gateway_reasoning_field()
    {
        Upstream.Enqueue(FakeResponses.Json(200, """
            {"id":"c1","object":"chat.completion","created":1,"model":"deepseek-reasoner",
             "choices":[{"index":0,"message":{"role":"assistant","content":"4","reasoning_content":"2+2 is 4"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}
            """));
        await using var host = await StartAsync("deepseek");

        var json = await ChatAsync(host, Chat("deepseek/deepseek-reasoner"));

        var message = json.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("4", message.GetProperty("content").GetString());
        Assert.Equal("2+2 is 4", message.GetProperty("reasoning").GetString());
        Assert.Equal("2+2 is 4", message.GetProperty("reasoning_content").GetString());
    }

    [Fact]
    public async Task DeepSeek_streamed_reasoning_content_is_relayed_in_the_reasoning_field()
    {
        Upstream.Enqueue(FakeResponses.Sse(
            """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"think"},"finish_reason":null}]}""",
            FakeResponses.Chunk("deepseek-reasoner", content: "4", id: "c1"),
            FakeResponses.Chunk("deepseek-reasoner", finishReason: "stop", id: "c1")));
        await using var host = await StartAsync("deepseek");
        var request = Chat("deepseek/deepseek-reasoner");
        request["stream"] = true;

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", request.ToJsonString(), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = Sse.ParseData(await response.Content.ReadAsStringAsync(Ct));
        var first = Sse.Json(events[0]).GetProperty("choices")[0].GetProperty("delta");
        Assert.Equal("think", first.GetProperty("reasoning").GetString());
        Assert.Equal("think", first.GetProperty("reasoning_content").GetString());
        Assert.Equal("4", Sse.Json(events[1]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal(Sse.Done, events[^1]);
    }

    [Fact]
    public async Task Fireworks_renames_the_cache_key_and_keeps_prediction()
    {
        await using var host = await StartAsync("fireworks");

        await ChatAsync(host, Chat("fireworks/accounts/fireworks/models/llama-v3p1-8b-instruct", ("prompt_cache_key", "tenant-1"), ("prediction", new JsonObject { ["type"] = "content", ["content"] = "x" }), ("store", true)));

        var body = SentBody();
        Assert.Equal("accounts/fireworks/models/llama-v3p1-8b-instruct", body.GetProperty("model").GetString());
        Assert.Equal("tenant-1", body.GetProperty("prompt_cache_isolation_key").GetString());
        Assert.False(Has(body, "prompt_cache_key"));
        Assert.Equal("content", body.GetProperty("prediction").GetProperty("type").GetString());
        Assert.False(Has(body, "store"));
    }

    [Fact]
    public async Task Cerebras_drops_the_parameters_it_rejects_and_replayed_reasoning()
    {
        await using var host = await StartAsync("cerebras");
        var request = Chat(
            "cerebras/llama-3.3-70b",
            ("frequency_penalty", 0.1),
            ("presence_penalty", 0.1),
            ("logit_bias", new JsonObject { ["1"] = 1 }),
            ("parallel_tool_calls", false),
            ("service_tier", "auto"),
            ("tools", Tools()),
            ("tool_choice", "auto"),
            ("top_p", 0.9));
        request["messages"]!.AsArray().Add(Assistant("ok", ("reasoning_content", "x"), ("reasoning", "x")));

        await ChatAsync(host, request);

        var body = SentBody();
        foreach (var dropped in (string[])["frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls", "service_tier"])
        {
            Assert.False(Has(body, dropped), dropped);
        }

        Assert.Equal("auto", body.GetProperty("tool_choice").GetString());
        Assert.Equal(0.9, body.GetProperty("top_p").GetDouble());
        Assert.False(Has(body.GetProperty("messages")[1], "reasoning_content"));
        Assert.False(Has(body.GetProperty("messages")[1], "reasoning"));
        Assert.Equal("ok", body.GetProperty("messages")[1].GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("\"required\"")]
    [InlineData("{\"type\":\"function\",\"function\":{\"name\":\"lookup\"}}")]
    public async Task Cerebras_refuses_a_forced_tool_choice(string toolChoice)
    {
        await using var host = await StartAsync("cerebras");

        var json = await ChatAsync(host, Chat("cerebras/m", ("tools", Tools()), ("tool_choice", JsonNode.Parse(toolChoice))), HttpStatusCode.BadRequest);

        Assert.Equal("tool_choice", json.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("unsupported_parameter", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Perplexity_drops_what_it_does_not_take_and_keeps_its_search_options()
    {
        await using var host = await StartAsync("perplexity");

        await ChatAsync(host, Chat(
            "perplexity/sonar",
            ("stop", "END"),
            ("seed", 1),
            ("logprobs", true),
            ("logit_bias", new JsonObject { ["1"] = 1 }),
            ("web_search_options", new JsonObject { ["search_context_size"] = "high" }),
            ("search_recency_filter", "week")));

        var body = SentBody();
        foreach (var dropped in (string[])["stop", "seed", "logprobs", "logit_bias"])
        {
            Assert.False(Has(body, dropped), dropped);
        }

        Assert.Equal("high", body.GetProperty("web_search_options").GetProperty("search_context_size").GetString());
        Assert.Equal("week", body.GetProperty("search_recency_filter").GetString());
    }

    [Fact]
    public async Task Perplexity_refuses_tools_with_a_400()
    {
        await using var host = await StartAsync("perplexity");

        var json = await ChatAsync(host, Chat("perplexity/sonar", ("tools", Tools())), HttpStatusCode.BadRequest);

        Assert.Equal("tools", json.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("has no function calling", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Requests);
    }

    [Theory]
    [InlineData("ollama")]
    [InlineData("vllm")]
    [InlineData("lmstudio")]
    [InlineData("openrouter")]
    public async Task Presets_without_quirks_pass_provider_extras_through(string type)
    {
        await using var host = await StartAsync(type);

        await ChatAsync(host, Chat(type + "/m", ("top_k", 40), ("seed", 5), ("logprobs", true), ("provider", new JsonObject { ["order"] = new JsonArray("a") })));

        var body = SentBody();
        Assert.Equal(40, body.GetProperty("top_k").GetInt32());
        Assert.Equal(5, body.GetProperty("seed").GetInt32());
        Assert.True(body.GetProperty("logprobs").GetBoolean());
        Assert.Equal("a", body.GetProperty("provider").GetProperty("order")[0].GetString());
    }
}
