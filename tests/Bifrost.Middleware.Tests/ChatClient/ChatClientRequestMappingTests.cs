using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>What an IChatClient receives for a chat completion request sent to the gateway over HTTP.</summary>
public sealed class ChatClientRequestMappingTests
{
    [Fact]
    public async Task Messages_map_roles_text_names_and_unknown_message_fields()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, _) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """
            {"model":"mea/gpt-test","messages":[
              {"role":"system","content":"be brief"},
              {"role":"developer","content":"be kind"},
              {"role":"user","name":"ann","content":"hi","x_note":{"a":1}},
              {"role":"assistant","content":"hello ann"},
              {"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}]}
            ]}
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var messages = Assert.Single(chat.Calls).Messages;
        Assert.Equal([ChatRole.System, ChatRole.System, ChatRole.User, ChatRole.Assistant, ChatRole.User], messages.Select(m => m.Role));
        Assert.Equal("be brief", messages[0].Text);
        Assert.Equal("be kind", messages[1].Text);
        Assert.Equal("hi", messages[2].Text);
        Assert.Equal("ann", messages[2].AuthorName);
        Assert.Equal(1, ((JsonElement)messages[2].AdditionalProperties!["x_note"]!).GetProperty("a").GetInt32());
        Assert.Equal("hello ann", messages[3].Text);
        Assert.Equal(["part one", "part two"], messages[4].Contents.OfType<TextContent>().Select(t => t.Text));
    }

    [Fact]
    public async Task Options_carry_sampling_limits_model_and_unknown_fields()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, _) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """
            {"model":"mea/gpt-test","messages":[{"role":"user","content":"hi"}],
             "temperature":0.25,"top_p":0.5,"max_completion_tokens":77,"max_tokens":5,"stop":["END","STOP"],"seed":42,
             "presence_penalty":0.75,"frequency_penalty":-0.5,"parallel_tool_calls":false,"reasoning_effort":"high",
             "user":"u-1","metadata":{"k":"v"},"store":true,"logprobs":true,"top_logprobs":2,"logit_bias":{"50256":-100},
             "service_tier":"flex","n":1,"x_vendor_option":{"depth":3}}
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var options = Assert.Single(chat.Calls).Options!;
        Assert.Equal("gpt-test", options.ModelId);
        Assert.Equal(0.25f, options.Temperature);
        Assert.Equal(0.5f, options.TopP);
        Assert.Equal(77, options.MaxOutputTokens); // max_completion_tokens wins over the legacy max_tokens
        Assert.Equal(["END", "STOP"], options.StopSequences!);
        Assert.Equal(42, options.Seed);
        Assert.Equal(0.75f, options.PresencePenalty);
        Assert.Equal(-0.5f, options.FrequencyPenalty);
        Assert.False(options.AllowMultipleToolCalls);
        Assert.Equal(ReasoningEffort.High, options.Reasoning!.Effort);
        Assert.Null(options.Tools);
        Assert.Null(options.ToolMode);
        Assert.Null(options.ResponseFormat);

        var extra = options.AdditionalProperties!;
        Assert.Equal("u-1", extra["user"]);
        Assert.Equal("v", ((IDictionary<string, string>)extra["metadata"]!)["k"]);
        Assert.Equal(true, extra["store"]);
        Assert.Equal(true, extra["logprobs"]);
        Assert.Equal(2, extra["top_logprobs"]);
        Assert.Equal(-100d, ((IDictionary<string, double>)extra["logit_bias"]!)["50256"]);
        Assert.Equal("flex", extra["service_tier"]);
        Assert.Equal(3, ((JsonElement)extra["x_vendor_option"]!).GetProperty("depth").GetInt32());
        Assert.False(extra.ContainsKey("reasoning_effort")); // mapped exactly
    }

    [Fact]
    public async Task Legacy_max_tokens_single_stop_and_minimal_effort_map_too()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """
            {"model":"mea/gpt-test","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"stop":"\n","reasoning_effort":"minimal"}
            """);

        var options = Assert.Single(chat.Calls).Options!;
        Assert.Equal(12, options.MaxOutputTokens);
        Assert.Equal(["\n"], options.StopSequences!);
        Assert.Equal(ReasoningEffort.Low, options.Reasoning!.Effort);
        Assert.Equal("minimal", options.AdditionalProperties!["reasoning_effort"]); // the exact value is not lost
    }

    [Fact]
    public async Task Tools_become_function_declarations_with_their_schema_and_strict_flag()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """
            {"model":"mea/gpt-test","messages":[{"role":"user","content":"weather?"}],
             "tools":[
               {"type":"function","function":{"name":"get_weather","description":"Gets the weather","strict":true,
                 "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}},
               {"type":"function","function":{"name":"now"}}],
             "tool_choice":{"type":"function","function":{"name":"get_weather"}}}
            """);

        var options = Assert.Single(chat.Calls).Options!;
        var tools = options.Tools!.Cast<AIFunctionDeclaration>().ToList();
        Assert.Equal(["get_weather", "now"], tools.Select(t => t.Name));
        Assert.Equal("Gets the weather", tools[0].Description);
        Assert.Equal("string", tools[0].JsonSchema.GetProperty("properties").GetProperty("city").GetProperty("type").GetString());
        Assert.Equal("city", tools[0].JsonSchema.GetProperty("required")[0].GetString());
        Assert.Equal(true, tools[0].AdditionalProperties["strict"]);
        Assert.Equal("object", tools[1].JsonSchema.GetProperty("type").GetString()); // no parameters: an empty object schema
        Assert.Empty(tools[1].AdditionalProperties);
        Assert.Equal("get_weather", Assert.IsType<RequiredChatToolMode>(options.ToolMode).RequiredFunctionName);
    }

    [Theory]
    [InlineData("\"none\"", "none")]
    [InlineData("\"auto\"", "auto")]
    [InlineData("\"required\"", "required")]
    public async Task Tool_choice_strings_map_to_tool_modes(string choice, string expected)
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", $$$"""
            {"model":"mea/gpt-test","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{{{choice}}} }
            """);

        var mode = Assert.Single(chat.Calls).Options!.ToolMode;
        ChatToolMode wanted = expected switch
        {
            "none" => ChatToolMode.None,
            "auto" => ChatToolMode.Auto,
            _ => ChatToolMode.RequireAny,
        };
        Assert.Equal(wanted, mode);
    }

    [Fact]
    public async Task Response_formats_map_to_chat_response_formats()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """{"model":"mea/m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}}""");
        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """{"model":"mea/m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}""");
        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """
            {"model":"mea/m","messages":[{"role":"user","content":"x"}],
             "response_format":{"type":"json_schema","json_schema":{"name":"person","description":"A person","strict":true,
               "schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}}
            """);

        var calls = chat.Calls.ToArray();
        Assert.IsType<ChatResponseFormatText>(calls[0].Options!.ResponseFormat);
        var json = Assert.IsType<ChatResponseFormatJson>(calls[1].Options!.ResponseFormat);
        Assert.Null(json.Schema);
        var schema = Assert.IsType<ChatResponseFormatJson>(calls[2].Options!.ResponseFormat);
        Assert.Equal("person", schema.SchemaName);
        Assert.Equal("A person", schema.SchemaDescription);
        Assert.Equal("string", schema.Schema!.Value.GetProperty("properties").GetProperty("name").GetProperty("type").GetString());
        Assert.Equal(true, calls[2].Options!.AdditionalProperties!["strict"]);
    }

    [Fact]
    public async Task Image_parts_become_data_content_for_data_urls_and_uri_content_for_http_urls()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);
        var png = Convert.ToBase64String([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);

        var (response, _) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", $$$"""
            {"model":"mea/vision","messages":[{"role":"user","content":[
              {"type":"text","text":"what is in these?"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,{{{png}}}","detail":"high"}},
              {"type":"image_url","image_url":{"url":"https://example.test/cat.jpg"}},
              {"type":"image_url","image_url":{"url":"https://example.test/render?id=7","detail":"low"}}
            ]}]}
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var contents = Assert.Single(Assert.Single(chat.Calls).Messages).Contents;
        Assert.Equal(4, contents.Count);
        Assert.Equal("what is in these?", Assert.IsType<TextContent>(contents[0]).Text);
        var data = Assert.IsType<DataContent>(contents[1]);
        Assert.Equal("image/png", data.MediaType);
        Assert.Equal(Convert.FromBase64String(png), data.Data.ToArray());
        Assert.Equal("high", data.AdditionalProperties!["detail"]);
        var uri = Assert.IsType<UriContent>(contents[2]);
        Assert.Equal(new Uri("https://example.test/cat.jpg"), uri.Uri);
        Assert.Equal("image/jpeg", uri.MediaType);
        Assert.Null(uri.AdditionalProperties);
        var unknownFormat = Assert.IsType<UriContent>(contents[3]);
        Assert.Equal("image/*", unknownFormat.MediaType);
        Assert.Equal("low", unknownFormat.AdditionalProperties!["detail"]);
    }

    [Fact]
    public async Task Audio_and_file_parts_become_data_and_hosted_file_content()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);
        var wav = Convert.ToBase64String([1, 2, 3, 4]);
        var pdf = Convert.ToBase64String("%PDF-1.7"u8.ToArray());

        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", $$$"""
            {"model":"mea/m","messages":[{"role":"user","content":[
              {"type":"input_audio","input_audio":{"data":"{{{wav}}}","format":"wav"}},
              {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,{{{pdf}}}"}},
              {"type":"file","file":{"file_id":"file-123"}}
            ]}]}
            """);

        var contents = Assert.Single(Assert.Single(chat.Calls).Messages).Contents;
        var audio = Assert.IsType<DataContent>(contents[0]);
        Assert.Equal("audio/wav", audio.MediaType);
        Assert.Equal([1, 2, 3, 4], audio.Data.ToArray());
        var file = Assert.IsType<DataContent>(contents[1]);
        Assert.Equal("application/pdf", file.MediaType);
        Assert.Equal("a.pdf", file.Name);
        Assert.Equal("file-123", Assert.IsType<HostedFileContent>(contents[2]).FileId);
    }

    [Fact]
    public async Task Assistant_tool_calls_and_tool_results_become_function_call_and_result_contents()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", """
            {"model":"mea/m","messages":[
              {"role":"user","content":"weather in Paris and Oslo?"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"days\":2,\"units\":{\"temp\":\"C\"}}"}},
                {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"not json"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"sunny"},
              {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"rain"}]}
            ]}
            """);

        var messages = Assert.Single(chat.Calls).Messages;
        Assert.Equal([ChatRole.User, ChatRole.Assistant, ChatRole.Tool, ChatRole.Tool], messages.Select(m => m.Role));
        var calls = messages[1].Contents.OfType<FunctionCallContent>().ToList();
        Assert.Equal(2, messages[1].Contents.Count); // no empty text next to the calls
        Assert.Equal("call_1", calls[0].CallId);
        Assert.Equal("get_weather", calls[0].Name);
        Assert.Equal("Paris", ((JsonElement)calls[0].Arguments!["city"]!).GetString());
        Assert.Equal(2, ((JsonElement)calls[0].Arguments!["days"]!).GetInt32());
        Assert.Equal("C", ((JsonElement)calls[0].Arguments!["units"]!).GetProperty("temp").GetString());
        Assert.Null(calls[1].Arguments); // a model's malformed arguments, replayed: kept as a parse error, not a failure
        Assert.NotNull(calls[1].Exception);
        var result1 = Assert.IsType<FunctionResultContent>(Assert.Single(messages[2].Contents));
        Assert.Equal("call_1", result1.CallId);
        Assert.Equal("sunny", result1.Result);
        var result2 = Assert.IsType<FunctionResultContent>(Assert.Single(messages[3].Contents));
        Assert.Equal("call_2", result2.CallId);
        Assert.Equal("rain", result2.Result);
    }

    [Theory]
    [InlineData("""{"model":"mea/m","n":2,"messages":[{"role":"user","content":"x"}]}""", "n")]
    [InlineData("""{"model":"mea/m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"grammar"}}]}""", "tools[0].type")]
    [InlineData("""{"model":"mea/m","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}}}""", "tool_choice")]
    [InlineData("""{"model":"mea/m","messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"https://x.test/v.mp4"}}]}]}""", "messages[0].content[0]")]
    [InlineData("""{"model":"mea/m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x.test/a.png"}}]}]}""", "messages[0].content[0]")]
    [InlineData("""{"model":"mea/m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,%%%"}}]}]}""", "messages[0].content[0]")]
    [InlineData("""{"model":"mea/m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}""", "response_format.type")]
    public async Task What_cannot_cross_the_abstraction_is_a_400_and_never_reaches_the_client(string json, string param)
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", json);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(param, body.GetProperty("error").GetProperty("param").GetString());
        Assert.Empty(chat.Calls);
    }
}
