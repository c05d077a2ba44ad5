using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Gemini;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>Chat requests → generateContent (the JSON sent upstream) and answers → chat completions, against the fake upstream.</summary>
public sealed class GeminiTranslationTests : GeminiTestBase
{
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
        Adapter = _services.GetRequiredService<GeminiAdapter>();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task Chat_posts_generateContent_with_the_key_in_x_goog_api_key_and_maps_the_answer()
    {
        var request = Chat("""
            {"model":"gemini-2.5-flash","messages":[
              {"role":"system","content":"Be brief."},
              {"role":"developer","content":[{"type":"text","text":"Answer in English."}]},
              {"role":"user","content":"Hello there"}],
             "temperature":0.3,"top_p":0.9,"max_tokens":100,"stop":["END"],"seed":7,"presence_penalty":0.5,"frequency_penalty":0.25}
            """);

        var response = await Adapter.ChatCompletionAsync(Context(), request, Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("POST", sent.Method);
        Assert.Equal("/v1beta/models/gemini-2.5-flash:generateContent", sent.Path);
        Assert.Equal(string.Empty, sent.Query);
        Assert.Equal(FakeGeminiUpstream.Key, sent.Headers["x-goog-api-key"]);
        Assert.False(sent.Headers.ContainsKey("authorization"));
        Assert.Equal(
            """{"contents":[{"role":"user","parts":[{"text":"Hello there"}]}],"systemInstruction":{"parts":[{"text":"Be brief."},{"text":"Answer in English."}]},"generationConfig":{"temperature":0.3,"topP":0.9,"maxOutputTokens":100,"stopSequences":["END"],"presencePenalty":0.5,"frequencyPenalty":0.25,"seed":7}}""",
            Sent(sent).ToJsonString());

        Assert.Equal("resp_fake_1", response.Id);
        Assert.Equal("gemini-2.5-flash", response.Model);
        var choice = Assert.Single(response.Choices);
        Assert.Equal("echo: Hello there", choice.Message!.Content);
        Assert.Equal("stop", choice.FinishReason);
        Assert.Equal(12, response.Usage!.PromptTokens);
        Assert.Equal(9, response.Usage.CompletionTokens);
        Assert.Equal(21, response.Usage.TotalTokens);
    }

    [Fact]
    public async Task Images_from_data_urls_become_inlineData_and_Files_API_uris_fileData()
    {
        var request = Chat("""
            {"model":"gemini-2.5-flash","messages":[{"role":"user","content":[
              {"type":"text","text":"What is this?"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
              {"type":"image_url","image_url":{"url":"https://generativelanguage.googleapis.com/v1beta/files/abc123.jpg"}},
              {"type":"input_audio","input_audio":{"data":"UklGRg==","format":"mp3"}}]}]}
            """);

        await Adapter.ChatCompletionAsync(Context(), request, Ct);

        Assert.Equal(
            """[{"text":"What is this?"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}},{"fileData":{"mimeType":"image/jpeg","fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc123.jpg"}},{"inlineData":{"mimeType":"audio/mpeg","data":"UklGRg=="}}]""",
            Sent(Assert.Single(Upstream.Requests))["contents"]![0]!["parts"]!.ToJsonString());
    }

    [Fact]
    public async Task A_web_image_url_is_a_400_that_never_reaches_Gemini()
    {
        var request = Chat("""{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}""");

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), request, Ct));

        Assert.Equal(400, error.StatusCode);
        Assert.Equal("unsupported_parameter", error.Error.Error.Code);
        Assert.Equal("messages[0].content[0].image_url.url", error.Error.Error.Param);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Tools_tool_choice_and_a_tool_call_history_map_to_function_declarations_calls_and_responses()
    {
        var request = Chat("""
            {"model":"gemini-2.5-flash","messages":[
              {"role":"user","content":"Weather in Paris and Rome?"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},"extra_content":{"google":{"thought_signature":"c2lnMQ=="}}},
                {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"{\"temp\":21}"},
              {"role":"tool","tool_call_id":"call_2","content":"sunny"}],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather by city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}],
             "tool_choice":{"type":"function","function":{"name":"get_weather"}}}
            """);

        await Adapter.ChatCompletionAsync(Context(), request, Ct);

        var body = Sent(Assert.Single(Upstream.Requests));
        Assert.Equal(
            """[{"role":"user","parts":[{"text":"Weather in Paris and Rome?"}]},{"role":"model","parts":[{"thoughtSignature":"c2lnMQ==","functionCall":{"id":"call_1","name":"get_weather","args":{"city":"Paris"}}},{"functionCall":{"id":"call_2","name":"get_weather","args":{"city":"Rome"}}}]},{"role":"user","parts":[{"functionResponse":{"id":"call_1","name":"get_weather","response":{"temp":21}}},{"functionResponse":{"id":"call_2","name":"get_weather","response":{"content":"sunny"}}}]}]""",
            body["contents"]!.ToJsonString());
        Assert.Equal(
            """[{"functionDeclarations":[{"name":"get_weather","description":"Weather by city","parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}]}]""",
            body["tools"]!.ToJsonString());
        Assert.Equal("""{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}}""", body["toolConfig"]!.ToJsonString());
    }

    [Theory]
    [InlineData("\"auto\"", "AUTO")]
    [InlineData("\"required\"", "ANY")]
    [InlineData("\"none\"", "NONE")]
    public async Task Tool_choice_strings_map_to_function_calling_modes(string choice, string mode)
    {
        var request = Chat($$$"""{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{{{choice}}}}""");

        await Adapter.ChatCompletionAsync(Context(), request, Ct);

        Assert.Equal($$$"""{"functionCallingConfig":{"mode":"{{{mode}}}"}}""", Sent(Assert.Single(Upstream.Requests))["toolConfig"]!.ToJsonString());
    }

    [Fact]
    public async Task A_call_from_another_provider_gets_the_documented_placeholder_signature()
    {
        var request = Chat("""
            {"model":"m","messages":[{"role":"user","content":"hi"},
              {"role":"assistant","tool_calls":[{"id":"toolu_9","type":"function","function":{"name":"f","arguments":""}}]},
              {"role":"tool","tool_call_id":"toolu_9","content":"[1,2]"}],"tools":[{"type":"function","function":{"name":"f"}}]}
            """);

        await Adapter.ChatCompletionAsync(Context(), request, Ct);

        var contents = Sent(Assert.Single(Upstream.Requests))["contents"]!;
        Assert.Equal("""{"thoughtSignature":"skip_thought_signature_validator","functionCall":{"id":"toolu_9","name":"f","args":{}}}""", contents[1]!["parts"]![0]!.ToJsonString());
        Assert.Equal("""{"functionResponse":{"id":"toolu_9","name":"f","response":{"content":"[1,2]"}}}""", contents[2]!["parts"]![0]!.ToJsonString());
    }

    [Fact]
    public async Task A_tool_message_answering_no_known_call_is_a_400()
    {
        var request = Chat("""{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"nope","content":"x"}]}""");

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), request, Ct));

        Assert.Equal(400, error.StatusCode);
        Assert.Equal("messages[1].tool_call_id", error.Error.Error.Param);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Function_calls_in_the_answer_become_tool_calls_with_their_signature()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(
            new JsonObject { ["functionCall"] = new JsonObject { ["name"] = "get_weather", ["args"] = new JsonObject { ["city"] = "Paris" } }, ["thoughtSignature"] = "c2lnLXJlc3A=" },
            new JsonObject { ["functionCall"] = new JsonObject { ["id"] = "fc_2", ["name"] = "get_time", ["args"] = new JsonObject() } }));

        var response = await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"hi"}]}"""), Ct);

        var choice = Assert.Single(response.Choices);
        Assert.Equal("tool_calls", choice.FinishReason);
        Assert.Null(choice.Message!.Content);
        Assert.Equal(2, choice.Message.ToolCalls!.Count);
        var first = choice.Message.ToolCalls[0];
        Assert.StartsWith("call_", first.Id, StringComparison.Ordinal);
        Assert.Equal("function", first.Type);
        Assert.Equal("get_weather", first.Function!.Name);
        Assert.Equal("""{"city":"Paris"}""", first.Function.Arguments);
        Assert.Equal("""{"google":{"thought_signature":"c2lnLXJlc3A="}}""", first.AdditionalProperties!["extra_content"].GetRawText());
        Assert.Equal("fc_2", choice.Message.ToolCalls[1].Id);
        Assert.Equal("{}", choice.Message.ToolCalls[1].Function!.Arguments);
        Assert.Null(choice.Message.ToolCalls[1].AdditionalProperties);
    }

    [Fact]
    public async Task Response_format_json_object_and_json_schema_set_the_mime_type_and_schema()
    {
        await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}"""), Ct);
        await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"integer"}}}}}}"""), Ct);

        var sent = Upstream.Requests.ToList();
        Assert.Equal("""{"responseMimeType":"application/json"}""", Sent(sent[0])["generationConfig"]!.ToJsonString());
        Assert.Equal("""{"responseMimeType":"application/json","responseJsonSchema":{"type":"object","properties":{"a":{"type":"integer"}}}}""", Sent(sent[1])["generationConfig"]!.ToJsonString());
    }

    [Fact]
    public async Task Reasoning_effort_sets_a_thinking_budget_and_thoughts_come_back_as_reasoning_with_their_tokens()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(
            new JsonArray(new JsonObject { ["text"] = "Let me think.", ["thought"] = true }, FakeGeminiUpstream.Text("42")),
            prompt: 100, candidates: 5, thoughts: 30, cached: 64);

        var response = await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low","n":2}"""), Ct);

        Assert.Equal("""{"candidateCount":2,"thinkingConfig":{"thinkingBudget":2048,"includeThoughts":true}}""", Sent(Assert.Single(Upstream.Requests))["generationConfig"]!.ToJsonString());
        var message = Assert.Single(response.Choices).Message!;
        Assert.Equal("42", message.Content);
        Assert.Equal("Let me think.", message.AdditionalProperties!["reasoning"].GetString());
        Assert.Equal(100, response.Usage!.PromptTokens);
        Assert.Equal(35, response.Usage.CompletionTokens);
        Assert.Equal(135, response.Usage.TotalTokens);
        Assert.Equal("""{"cached_tokens":64}""", response.Usage.PromptTokensDetails!.Value.GetRawText());
        Assert.Equal("""{"reasoning_tokens":30}""", response.Usage.CompletionTokensDetails!.Value.GetRawText());
    }

    [Fact]
    public async Task Reasoning_effort_none_turns_thinking_off()
    {
        await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"none"}"""), Ct);

        Assert.Equal("""{"thinkingConfig":{"thinkingBudget":0}}""", Sent(Assert.Single(Upstream.Requests))["generationConfig"]!.ToJsonString());
    }

    [Theory]
    [InlineData("MAX_TOKENS", "length")]
    [InlineData("SAFETY", "content_filter")]
    [InlineData("RECITATION", "content_filter")]
    [InlineData("PROHIBITED_CONTENT", "content_filter")]
    [InlineData("OTHER", "stop")]
    [InlineData("STOP", "stop")]
    public async Task Finish_reasons_map_to_OpenAI_values(string reason, string expected)
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("partial")), finishReason: reason);

        var response = await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"hi"}]}"""), Ct);

        Assert.Equal(expected, Assert.Single(response.Choices).FinishReason);
    }

    [Fact]
    public async Task A_blocked_prompt_is_an_empty_content_filter_choice()
    {
        Upstream.Respond = _ => new JsonObject
        {
            ["promptFeedback"] = new JsonObject { ["blockReason"] = "SAFETY" },
            ["usageMetadata"] = new JsonObject { ["promptTokenCount"] = 8, ["totalTokenCount"] = 8 },
        };

        var response = await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"bad"}]}"""), Ct);

        var choice = Assert.Single(response.Choices);
        Assert.Equal("content_filter", choice.FinishReason);
        Assert.Equal(string.Empty, choice.Message!.Content);
        Assert.Equal(8, response.Usage!.PromptTokens);
        Assert.Equal(0, response.Usage.CompletionTokens);
    }

    [Fact]
    public async Task An_answer_without_candidates_or_block_reason_is_a_502()
    {
        Upstream.Respond = _ => new JsonObject { ["usageMetadata"] = new JsonObject { ["promptTokenCount"] = 8 } };

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"x"}]}"""), Ct));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("invalid_provider_response", error.Error.Error.Code);
    }

    [Fact]
    public async Task Logprobs_and_unknown_reasoning_efforts_are_refused()
    {
        var logprobs = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true}"""), Ct));
        var effort = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}"""), Ct));

        Assert.Equal((400, "logprobs"), (logprobs.StatusCode, logprobs.Error.Error.Param));
        Assert.Equal((400, "reasoning_effort"), (effort.StatusCode, effort.Error.Error.Param));
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Each_candidate_becomes_a_choice_with_its_index_and_finish_reason()
    {
        Upstream.Respond = _ =>
        {
            var response = FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("first")));
            response["candidates"]!.AsArray().Add(new JsonObject { ["content"] = new JsonObject { ["role"] = "model", ["parts"] = new JsonArray(FakeGeminiUpstream.Text("second")) }, ["finishReason"] = "MAX_TOKENS", ["index"] = 1 });
            return response;
        };

        var response = await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}"""), Ct);

        Assert.Equal(2, Sent(Assert.Single(Upstream.Requests))["generationConfig"]!["candidateCount"]!.GetValue<int>());
        Assert.Equal([(0, "first", "stop"), (1, "second", "length")], response.Choices.Select(c => (c.Index, c.Message!.Content, c.FinishReason)));
    }

    [Fact]
    public async Task Gemini_extras_top_k_safety_settings_and_cached_content_are_forwarded()
    {
        await Adapter.ChatCompletionAsync(Context(), Chat("""{"model":"m","messages":[{"role":"user","content":"x"}],"top_k":40,"safety_settings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}],"cached_content":"cachedContents/abc"}"""), Ct);

        var body = Sent(Assert.Single(Upstream.Requests));
        Assert.Equal("""{"topK":40}""", body["generationConfig"]!.ToJsonString());
        Assert.Equal("""[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]""", body["safetySettings"]!.ToJsonString());
        Assert.Equal("cachedContents/abc", body["cachedContent"]!.GetValue<string>());
    }

    [Fact]
    public void Default_base_url_is_AI_Studio_v1beta()
    {
        var context = new ProviderContext("gemini", new ProviderOptions { Type = "gemini" }, "gemini-2.5-flash", "k");

        Assert.Equal("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent", GeminiAdapter.Endpoint(context, "models/gemini-2.5-flash:generateContent").ToString());
    }
}
