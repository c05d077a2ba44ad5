using System.Net;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>Chat completions ↔ Converse, through the gateway's HTTP endpoint and the fake Bedrock Runtime.</summary>
public sealed class BedrockTranslationTests : BedrockTestBase
{
    [Fact]
    public async Task A_chat_goes_to_converse_with_the_model_id_encoded_and_the_api_key_as_bearer()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "bedrock/" + Model, ["messages"] = Messages(User("hello there")) });

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse", sent.RawTarget);
        Assert.Equal(Model, sent.ModelId);
        Assert.Equal("Bearer " + Key, sent.Headers["authorization"]);
        Assert.Equal("application/json", sent.Headers["accept"]);
        AssertJson("""{"messages":[{"role":"user","content":[{"text":"hello there"}]}]}""", sent.Body);
        Assert.Equal("chatcmpl-req-1", json.GetProperty("id").GetString());
        Assert.Equal(Model, json.GetProperty("model").GetString());
        var choice = json.GetProperty("choices")[0];
        Assert.Equal("echo: hello there", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(12, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(9, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(21, json.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task An_inference_profile_arn_is_one_encoded_path_segment()
    {
        const string arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";
        await using var host = await StartHostAsync();

        await Adapter(host).ChatCompletionAsync(Context(arn), Request(), Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse", sent.RawTarget);
        Assert.Equal(arn, sent.ModelId);
    }

    [Fact]
    public async Task System_messages_images_tools_tool_results_and_inference_config_are_translated()
    {
        await using var host = await StartHostAsync();
        var body = JsonNode.Parse("""
        {
          "model": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
          "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [{"type": "text", "text": "What is here?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
            {"role": "assistant", "content": "Looking.", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "user", "content": "Thanks"}
          ],
          "tools": [{"type": "function", "function": {"name": "lookup", "description": "Looks up", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
          "tool_choice": {"type": "function", "function": {"name": "lookup"}},
          "max_completion_tokens": 300, "temperature": 0.2, "top_p": 0.9, "stop": ["END"],
          "seed": 7,
          "additionalModelRequestFields": {"top_k": 40},
          "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
        }
        """)!.AsObject();

        await PostAsync(host, "/openai/v1/chat/completions", body);

        AssertJson("""
        {
          "messages": [
            {"role": "user", "content": [{"text": "What is here?"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]},
            {"role": "assistant", "content": [{"text": "Looking."}, {"toolUse": {"toolUseId": "call_1", "name": "lookup", "input": {"q": "cat"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "call_1", "content": [{"text": "a cat"}], "status": "success"}}, {"text": "Thanks"}]}
          ],
          "system": [{"text": "Be brief."}, {"text": "Use tools."}],
          "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
          "toolConfig": {
            "tools": [{"toolSpec": {"name": "lookup", "description": "Looks up", "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}}}}}],
            "toolChoice": {"tool": {"name": "lookup"}}
          },
          "additionalModelRequestFields": {"top_k": 40},
          "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
        }
        """, Assert.Single(Upstream.Requests).Body);
    }

    [Theory]
    [InlineData("\"auto\"", """{"auto":{}}""")]
    [InlineData("\"required\"", """{"any":{}}""")]
    public async Task Tool_choice_auto_and_required_become_auto_and_any(string choice, string expected)
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject
        {
            ["model"] = "bedrock/" + Model,
            ["messages"] = Messages(User("hi")),
            ["tools"] = JsonNode.Parse("""[{"type":"function","function":{"name":"f"}}]"""),
            ["tool_choice"] = JsonNode.Parse(choice),
        };

        await PostAsync(host, "/openai/v1/chat/completions", body);

        var sent = Assert.Single(Upstream.Requests).Body!;
        AssertJson(expected, sent["toolConfig"]!["toolChoice"]);
        AssertJson("""{"type":"object","properties":{}}""", sent["toolConfig"]!["tools"]![0]!["toolSpec"]!["inputSchema"]!["json"]);
    }

    [Fact]
    public async Task Tool_choice_none_without_tool_history_sends_no_tool_config()
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject
        {
            ["model"] = "bedrock/" + Model,
            ["messages"] = Messages(User("hi")),
            ["tools"] = JsonNode.Parse("""[{"type":"function","function":{"name":"f"}}]"""),
            ["tool_choice"] = "none",
        };

        await PostAsync(host, "/openai/v1/chat/completions", body);

        Assert.Null(Assert.Single(Upstream.Requests).Body!["toolConfig"]);
    }

    [Fact]
    public async Task Tool_use_answers_become_tool_calls_with_cached_usage()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(
            new JsonArray(
                new JsonObject { ["reasoningContent"] = new JsonObject { ["reasoningText"] = new JsonObject { ["text"] = "Need data.", ["signature"] = "sig" } } },
                FakeBedrockUpstream.Text("Checking."),
                FakeBedrockUpstream.ToolUse("tooluse_1", "lookup", new JsonObject { ["q"] = "cat", ["n"] = 2 })),
            "tool_use",
            input: 20,
            output: 15,
            cacheRead: 100,
            cacheWrite: 5);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "bedrock/" + Model, ["messages"] = Messages(User("find a cat")) });

        var choice = json.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal("Checking.", message.GetProperty("content").GetString());
        Assert.Equal("Need data.", message.GetProperty("reasoning").GetString());
        var call = message.GetProperty("tool_calls")[0];
        Assert.Equal("tooluse_1", call.GetProperty("id").GetString());
        Assert.Equal("lookup", call.GetProperty("function").GetProperty("name").GetString());
        AssertJson("""{"q":"cat","n":2}""", JsonNode.Parse(call.GetProperty("function").GetProperty("arguments").GetString()!));
        var usage = json.GetProperty("usage");
        Assert.Equal(125, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(15, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(140, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(100, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task A_json_schema_response_format_is_a_forced_tool_whose_input_is_the_content()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.ToolUse("tooluse_s", "city", new JsonObject { ["name"] = "Oslo", ["population"] = 709000 })), "tool_use");
        await using var host = await StartHostAsync();
        var body = new JsonObject
        {
            ["model"] = "bedrock/" + Model,
            ["messages"] = Messages(User("A city?")),
            ["response_format"] = JsonNode.Parse("""{"type":"json_schema","json_schema":{"name":"city","schema":{"type":"object","properties":{"name":{"type":"string"},"population":{"type":"integer"}}}}}"""),
        };

        var json = await PostAsync(host, "/openai/v1/chat/completions", body);

        AssertJson("""
        {
          "tools": [{"toolSpec": {"name": "city", "description": "Answer with this tool: its input is the response.", "inputSchema": {"json": {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}}}}}}],
          "toolChoice": {"tool": {"name": "city"}}
        }
        """, Assert.Single(Upstream.Requests).Body!["toolConfig"]);
        var choice = json.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.False(choice.GetProperty("message").TryGetProperty("tool_calls", out _));
        AssertJson("""{"name":"Oslo","population":709000}""", JsonNode.Parse(choice.GetProperty("message").GetProperty("content").GetString()!));
    }

    [Fact]
    public async Task A_streamed_json_object_response_format_streams_the_tools_input_as_content()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.ToolUse("tooluse_s", "json_response", new JsonObject { ["ok"] = true, ["n"] = 12 })), "tool_use");
        await using var host = await StartHostAsync();
        var request = Request("json please", stream: true);
        request.ResponseFormat = new ChatCompletionResponseFormat { Type = "json_object" };

        var chunks = await CollectAsync(Adapter(host).StreamChatCompletionAsync(Context(), request, Ct));

        AssertJson("""{"tool":{"name":"json_response"}}""", Assert.Single(Upstream.Requests).Body!["toolConfig"]!["toolChoice"]);
        AssertJson("""{"type":"object"}""", Upstream.Requests.Single().Body!["toolConfig"]!["tools"]![0]!["toolSpec"]!["inputSchema"]!["json"]);
        AssertJson("""{"ok":true,"n":12}""", JsonNode.Parse(string.Concat(chunks.Select(c => c.Choices.FirstOrDefault()?.Delta.Content))));
        Assert.DoesNotContain(chunks, c => c.Choices.Any(ch => ch.Delta.ToolCalls is not null));
        Assert.Equal("stop", Assert.Single(chunks, c => c.Choices.Count > 0 && c.Choices[0].FinishReason is not null).Choices[0].FinishReason);
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("model_context_window_exceeded", "length")]
    [InlineData("guardrail_intervened", "content_filter")]
    [InlineData("content_filtered", "content_filter")]
    public async Task Stop_reasons_map_to_finish_reasons(string stopReason, string finishReason)
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.Text("x")), stopReason);
        await using var host = await StartHostAsync();

        var response = await Adapter(host).ChatCompletionAsync(Context(), Request(), Ct);

        Assert.Equal(finishReason, response.Choices[0].FinishReason);
    }

    [Fact]
    public async Task A_malformed_model_output_is_a_retryable_502()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.Text("x")), "malformed_model_output");
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(), Request(), Ct));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("malformed_model_output", error.Error.Error.Code);
        Assert.True(error.IsRetryable);
    }

    [Theory]
    [InlineData("""{"n":2}""", "n")]
    [InlineData("""{"logprobs":true}""", "logprobs")]
    [InlineData("""{"response_format":{"type":"json_object"},"tools":[{"type":"function","function":{"name":"f"}}]}""", "response_format")]
    [InlineData("""{"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}""", "response_format.json_schema.schema")]
    [InlineData("""{"reasoning_effort":"high"}""", "reasoning_effort")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}""", "messages[0].content[0].image_url.url")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}""", "messages[0].content[0].image_url.url")]
    [InlineData("""{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}""", "messages[0].tool_calls[0].function.arguments")]
    public async Task What_converse_cannot_take_is_a_400_before_any_upstream_call(string extra, string param)
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "bedrock/" + Model, ["messages"] = Messages(User("hi")) };
        foreach (var (name, value) in JsonNode.Parse(extra)!.AsObject())
        {
            body[name] = value!.DeepClone();
        }

        var json = await PostAsync(host, "/openai/v1/chat/completions", body, HttpStatusCode.BadRequest);

        Assert.Equal(param, json.GetProperty("error").GetProperty("param").GetString());
        Assert.Empty(Upstream.Requests);
    }
}
