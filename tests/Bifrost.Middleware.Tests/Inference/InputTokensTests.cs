using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tokenization;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>
/// <c>POST responses/input_tokens</c>: the answer shape; local estimates that equal OpenAI's published counts (cookbook
/// vectors) through the chat framing; native counting by a provider with a Responses API; fallback to the estimate.
/// </summary>
public sealed class InputTokensTests : IAsyncLifetime
{
    private const string Path = "/openai/v1/responses/input_tokens";
    private ChatOnlyUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await ChatOnlyUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    /// <summary>A host whose "openai" provider is the fake upstream, native Responses on or off.</summary>
    private Task<GatewayHost> StartAsync(bool native) => StartLocalAsync(options => options.Providers["openai"] = new ProviderOptions
    {
        Type = "openai",
        BaseUrl = _upstream.BaseUrl,
        NativeResponses = native,
        MaxRetries = 0,
        Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
    });

    [Fact]
    public async Task A_local_model_gets_an_estimated_count_in_the_documented_shape()
    {
        await using var host = await StartAsync(native: false);
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "hello world" });

        Assert.Equal("response.input_tokens", json.GetProperty("object").GetString());

        // OpenAI's chat framing: 3 per message + role ("user": 1) + content ("hello world": 2), + 3 to prime the reply.
        Assert.Equal(9, json.GetProperty("input_tokens").GetInt32());
        var extra = json.GetProperty("extra_fields");
        Assert.Equal("estimated", extra.GetProperty("count_method").GetString());
        Assert.Equal("count_tokens", extra.GetProperty("request_type").GetString());
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("echo", extra.GetProperty("model_requested").GetString());
        Assert.Equal(["object", "input_tokens", "extra_fields"], json.EnumerateObject().Select(p => p.Name));

        // The unversioned route too.
        var bare = await host.PostOkAsync("/openai/responses/input_tokens", new JsonObject { ["model"] = "local/echo", ["input"] = "hello world" });
        Assert.Equal(9, bare.GetProperty("input_tokens").GetInt32());
    }

    [Theory]
    [InlineData("openai/gpt-4o", 101)]
    [InlineData("openai/gpt-4o-mini", 101)]
    [InlineData("openai/gpt-4", 105)]
    [InlineData("openai/gpt-3.5-turbo", 105)]
    public async Task The_cookbook_function_calling_example_counts_as_published(string model, int expected)
    {
        // OpenAI cookbook, "How to count tokens with tiktoken": the get_current_weather example, 101 (gpt-4o) / 105 (gpt-4) tokens.
        await using var host = await StartAsync(native: false);
        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = model,
            ["instructions"] = "You are a helpful assistant that can answer to questions about the weather.",
            ["input"] = "What's the weather like in San Francisco?",
            ["tools"] = new JsonArray(new JsonObject
            {
                ["type"] = "function",
                ["name"] = "get_current_weather",
                ["description"] = "Get the current weather in a given location",
                ["parameters"] = JsonNode.Parse("""
                    {
                      "type": "object",
                      "properties": {
                        "location": { "type": "string", "description": "The city and state, e.g. San Francisco, CA" },
                        "unit": { "type": "string", "description": "The unit of temperature to return", "enum": ["celsius", "fahrenheit"] }
                      },
                      "required": ["location"]
                    }
                    """),
            }),
        });

        Assert.Equal(expected, json.GetProperty("input_tokens").GetInt32());
        Assert.Equal("estimated", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        Assert.Equal("openai", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Empty(_upstream.Requests); // an estimate asks nobody
    }

    [Theory]
    [InlineData("openai/gpt-4o", 124, "o200k_base")]
    [InlineData("openai/gpt-4", 129, "cl100k_base")]
    public async Task The_cookbook_example_messages_as_items_count_as_published_less_the_names_items_cannot_carry(string model, int published, string encoding)
    {
        // The cookbook's example conversation counts 124 (gpt-4o) / 129 (gpt-4) with its four "name" fields, each worth
        // 1 token plus the name's tokens. Responses message items have no "name", so the same conversation as items counts that much less.
        (string Role, string? Name, string Text)[] messages =
        [
            ("system", null, "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."),
            ("system", "example_user", "New synergies will help drive top-line growth."),
            ("system", "example_assistant", "Things working well together will increase revenue."),
            ("system", "example_user", "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."),
            ("system", "example_assistant", "Let's talk later when we're less busy about how to do better."),
            ("user", null, "This late pivot means we don't have time to boil the ocean for the client deliverable."),
        ];
        var tokenEncoding = encoding == "o200k_base" ? TokenEncoding.O200kBase : TokenEncoding.Cl100kBase;
        var names = messages.Where(m => m.Name is not null).Sum(m => 1 + TokenCounter.Shared.CountText(m.Name!, tokenEncoding));

        await using var host = await StartAsync(native: false);
        var items = new JsonArray([.. messages.Select(m => (JsonNode)new JsonObject { ["type"] = "message", ["role"] = m.Role, ["content"] = m.Text })]);
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = model, ["input"] = items });
        Assert.Equal(published - names, json.GetProperty("input_tokens").GetInt32());

        // The first message as instructions instead of an item: the same count.
        var rest = new JsonArray([.. messages.Skip(1).Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = m.Text }) })]);
        var withInstructions = await host.PostOkAsync(Path, new JsonObject { ["model"] = model, ["instructions"] = messages[0].Text, ["input"] = rest });
        Assert.Equal(published - names, withInstructions.GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task An_estimate_cannot_see_a_stored_previous_response_so_it_says_so()
    {
        await using var host = await StartAsync(native: false);
        var error = await host.PostErrorAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "and then?", ["previous_response_id"] = "resp_earlier" }, 400, "unsupported_parameter", "previous_response_id");
        Assert.Equal("count_tokens", error.GetProperty("extra_fields").GetProperty("request_type").GetString());
        Assert.Empty(_upstream.Requests);

        // A native provider counts it (it has the stored response).
        _upstream.NativeResponses = true;
        await using var native = await StartAsync(native: true);
        var json = await native.PostOkAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "and then?", ["previous_response_id"] = "resp_earlier" });
        Assert.Equal("native", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        Assert.Equal("resp_earlier", Assert.Single(_upstream.Requests).Body!["previous_response_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Function_call_history_and_low_detail_images_are_counted()
    {
        await using var host = await StartAsync(native: false);
        async Task<int> Count(params JsonNode[] items) =>
            (await host.PostOkAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = new JsonArray(items) })).GetProperty("input_tokens").GetInt32();

        var text = await Count(new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = "What is in this picture?" }) });
        var image = await Count(new JsonObject
        {
            ["role"] = "user",
            ["content"] = new JsonArray(
                new JsonObject { ["type"] = "input_text", ["text"] = "What is in this picture?" },
                new JsonObject { ["type"] = "input_image", ["image_url"] = "https://example.com/cat.png", ["detail"] = "low" }),
        });
        Assert.Equal(85, image - text); // OpenAI: a low-detail image costs 85 tokens on gpt-4o

        var withCalls = await Count(
            new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = "What is in this picture?" }) },
            new JsonObject { ["type"] = "function_call", ["call_id"] = "call_1", ["name"] = "describe_picture", ["arguments"] = """{"id":"pic-1"}""" },
            new JsonObject { ["type"] = "function_call_output", ["call_id"] = "call_1", ["output"] = "a cat on a mat" });
        Assert.True(withCalls > text + 6, $"{withCalls} vs {text}: the call and its output are counted");
    }

    [Fact]
    public async Task A_native_provider_counts_and_the_answer_says_native()
    {
        _upstream.NativeResponses = true;
        await using var host = await StartAsync(native: true);
        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "openai/gpt-4o",
            ["input"] = "count me",
            ["instructions"] = "be brief",
            ["fallbacks"] = new JsonArray("local/echo"),
        });

        Assert.Equal("response.input_tokens", json.GetProperty("object").GetString());
        Assert.Equal(4242, json.GetProperty("input_tokens").GetInt32());
        Assert.Equal("native", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        Assert.Equal("openai", json.GetProperty("extra_fields").GetProperty("provider").GetString());

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/responses/input_tokens", sent.Path);
        Assert.Equal("Bearer sk-upstream", sent.Authorization);
        Assert.Equal("gpt-4o", sent.Body!["model"]!.GetValue<string>());
        Assert.Equal("count me", sent.Body["input"]!.GetValue<string>());
        Assert.Equal("be brief", sent.Body["instructions"]!.GetValue<string>());
        Assert.Null(sent.Body["fallbacks"]);
        Assert.Null(sent.Body["stream"]);
    }

    [Theory]
    [InlineData(503)]
    [InlineData(429)]
    public async Task A_native_count_that_fails_retryably_falls_back_to_the_estimate(int status)
    {
        _upstream.NativeResponses = true;
        _upstream.InputTokens = _ => (status, new JsonObject { ["error"] = new JsonObject { ["message"] = "busy", ["type"] = "server_error" } });
        await using var host = await StartAsync(native: true);
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "hello world" });

        Assert.Equal(9, json.GetProperty("input_tokens").GetInt32());
        Assert.Equal("estimated", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        Assert.Single(_upstream.To("/v1/responses/input_tokens"));
    }

    [Fact]
    public async Task A_native_count_the_provider_refuses_is_its_error()
    {
        _upstream.NativeResponses = true;
        _upstream.InputTokens = _ => (400, new JsonObject { ["error"] = new JsonObject { ["message"] = "Invalid input", ["type"] = "invalid_request_error", ["code"] = "invalid_value", ["param"] = "input" } });
        await using var host = await StartAsync(native: true);
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "x" });
        var json = await ReadAsync(response);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal("Invalid input", json.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("count_tokens", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task Without_native_responses_the_provider_is_not_asked()
    {
        _upstream.NativeResponses = true; // the upstream could answer, but the provider is configured as chat-only
        await using var host = await StartAsync(native: false);
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "openai/gpt-4o", ["input"] = "hello world" });
        Assert.Equal(9, json.GetProperty("input_tokens").GetInt32());
        Assert.Equal("estimated", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        Assert.Empty(_upstream.Requests);
    }
}
