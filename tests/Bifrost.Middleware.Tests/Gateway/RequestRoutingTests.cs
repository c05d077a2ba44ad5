using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gateway;

/// <summary>How a request reaches its provider: default provider, n choices, unknown fields kept, fallbacks stripped.</summary>
public sealed class RequestRoutingTests
{
    [Fact]
    public async Task A_bare_model_goes_to_the_default_provider()
    {
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.DefaultProvider = "acme";
                options.Providers["acme"] = new ProviderOptions { Models = ["house-model"] };
            },
            bifrost => bifrost.AddProvider<CapturingAdapter>("acme"));
        var acme = host.Services.GetRequiredService<CapturingAdapter>();

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"house-model","messages":[{"role":"user","content":"hi"}]}""", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("reply from acme", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("acme", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("house-model", json.GetProperty("extra_fields").GetProperty("model_requested").GetString());
        var (context, request) = Assert.Single(acme.Calls);
        Assert.Equal("acme", context.ProviderName);
        Assert.Equal("house-model", context.Model);
        Assert.Equal("house-model", request.Model);
    }

    [Fact]
    public async Task A_bare_model_on_the_local_default_is_echoed()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"echo","messages":[{"role":"user","content":"bare"}]}""", TestContext.Current.CancellationToken);

        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("bare", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    [Fact]
    public async Task N_2_gives_two_choices_with_their_indexes()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","n":2,"messages":[{"role":"user","content":"twice please"}]}""", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        var choices = json.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(2, choices.Count);
        Assert.Equal([0, 1], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.All(choices, c =>
        {
            Assert.Equal("assistant", c.GetProperty("message").GetProperty("role").GetString());
            Assert.Equal("twice please", c.GetProperty("message").GetProperty("content").GetString());
            Assert.Equal("stop", c.GetProperty("finish_reason").GetString());
        });
        Assert.Equal(4, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var extra = json.GetProperty("extra_fields");
        Assert.Equal("chat_completion", extra.GetProperty("request_type").GetString());
        Assert.Equal(JsonValueKind.Number, extra.GetProperty("latency").ValueKind);
        Endpoints.StreamingTests.AssertNoEmptyFields(extra);
    }

    [Fact]
    public async Task The_adapter_gets_unknown_fields_the_bare_model_and_no_fallbacks()
    {
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddProvider<CapturingAdapter>("acme"));
        var acme = host.Services.GetRequiredService<CapturingAdapter>();

        const string body = """
            {
              "model": "acme/big-model",
              "fallbacks": ["local/echo"],
              "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "part", "cache_control": {"type": "ephemeral"}}], "x_msg": 1}
              ],
              "temperature": 0.25,
              "metadata": {"k": "v"},
              "x_vendor_option": {"depth": 3, "tags": ["a", "b"]},
              "prediction": {"type": "content", "content": "guess"},
              "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "x_fn": true}}],
              "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "x_schema": "kept"}}
            }
            """;
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (context, request) = Assert.Single(acme.Calls);
        Assert.Equal("big-model", request.Model);
        Assert.Equal("big-model", context.Model);
        Assert.Null(request.Fallbacks);
        Assert.Null(request.Stream);
        Assert.Equal(0.25, request.Temperature);
        Assert.Equal("v", request.Metadata!["k"]);

        var extra = request.AdditionalProperties!;
        Assert.Equal(3, extra["x_vendor_option"].GetProperty("depth").GetInt32());
        Assert.Equal(["a", "b"], extra["x_vendor_option"].GetProperty("tags").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("guess", extra["prediction"].GetProperty("content").GetString());
        Assert.False(extra.ContainsKey("fallbacks"));
        Assert.False(extra.ContainsKey("model"));

        var user = request.Messages![1];
        Assert.Equal(1, user.AdditionalProperties!["x_msg"].GetInt32());
        var part = Assert.Single(user.Content!.Parts!);
        Assert.Equal("part", part.Text);
        Assert.Equal("ephemeral", part.AdditionalProperties!["cache_control"].GetProperty("type").GetString());
        Assert.True(request.Tools![0].Function!.AdditionalProperties!["x_fn"].GetBoolean());
        Assert.Equal("kept", request.ResponseFormat!.JsonSchema!.AdditionalProperties!["x_schema"].GetString());

        // The caller's answer names the provider that served and the model asked for.
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("acme", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("big-model", json.GetProperty("extra_fields").GetProperty("model_requested").GetString());
    }

    [Fact]
    public async Task A_streamed_request_reaches_the_adapter_with_stream_true_and_its_stream_options()
    {
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddProvider<CapturingAdapter>("acme"));
        var acme = host.Services.GetRequiredService<CapturingAdapter>();

        using var response = await host.PostJsonAsync(
            "/openai/v1/chat/completions",
            """{"model":"acme/m","stream":true,"stream_options":{"include_usage":true},"fallbacks":["local/echo"],"x_extra":"kept","messages":[{"role":"user","content":"s"}]}""",
            TestContext.Current.CancellationToken);

        var events = Sse.ParseData(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(Sse.Done, events[^1]);
        var (_, request) = Assert.Single(acme.Calls);
        Assert.Equal("m", request.Model);
        Assert.True(request.Stream);
        Assert.True(request.StreamOptions!.IncludeUsage);
        Assert.Null(request.Fallbacks);
        Assert.Equal("kept", request.AdditionalProperties!["x_extra"].GetString());
    }

    [Fact]
    public async Task A_provider_name_is_matched_case_insensitively()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"LOCAL/echo","messages":[{"role":"user","content":"case"}]}""", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("case", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Response_JSON_uses_the_wire_names_whatever_the_hosts_JSON_options()
    {
        await using var host = await GatewayHost.StartAsync(services: s => s.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.KebabCaseUpper));
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"it's \"quoted\""}]}""", TestContext.Current.CancellationToken);

        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Contains("\"finish_reason\":\"stop\"", text, StringComparison.Ordinal);
        Assert.Contains("\"prompt_tokens\":", text, StringComparison.Ordinal);
        Assert.Contains("\"extra_fields\":{", text, StringComparison.Ordinal);
        Assert.Contains("it's \\\"quoted\\\"", text, StringComparison.Ordinal);
    }
}
