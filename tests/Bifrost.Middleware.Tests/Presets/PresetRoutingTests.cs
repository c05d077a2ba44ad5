using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Presets;

/// <summary>
/// <c>"Type": "groq"</c> plus a key is a whole provider: each preset reaches its documented base URL with its auth header,
/// through the gateway's HTTP endpoint, for chat (JSON and SSE) and the models list; a configured BaseUrl wins; local
/// servers need no key; cloud presets without a key fail at start.
/// </summary>
public sealed class PresetRoutingTests : PresetTestBase
{
    /// <summary>Type, the URL its chat completions go to (from each provider's documentation), whether it needs a key.</summary>
    public static TheoryData<string, string, bool, bool> Presets()
    {
        var data = new TheoryData<string, string, bool, bool>();
        (string Type, string Url, bool Cloud)[] presets =
        [
            ("groq", "https://api.groq.com/openai/v1/chat/completions", true),
            ("mistral", "https://api.mistral.ai/v1/chat/completions", true),
            ("xai", "https://api.x.ai/v1/chat/completions", true),
            ("deepseek", "https://api.deepseek.com/chat/completions", true),
            ("openrouter", "https://openrouter.ai/api/v1/chat/completions", true),
            ("together", "https://api.together.ai/v1/chat/completions", true),
            ("fireworks", "https://api.fireworks.ai/inference/v1/chat/completions", true),
            ("cerebras", "https://api.cerebras.ai/v1/chat/completions", true),
            ("perplexity", "https://api.perplexity.ai/chat/completions", true),
            ("ollama", "http://localhost:11434/v1/chat/completions", false),
            ("vllm", "http://localhost:8000/v1/chat/completions", false),
            ("lmstudio", "http://localhost:1234/v1/chat/completions", false),
        ];
        foreach (var (type, url, cloud) in presets)
        {
            data.Add(type, url, cloud, false);
            data.Add(type, url, cloud, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Presets))]
    public async Task Type_and_key_alone_reach_the_preset_base_url_with_its_auth(string type, string url, bool cloud, bool stream)
    {
        // Local servers are configured without a key (none is required); cloud ones with one.
        await using var host = await StartAsync(type, key: cloud ? Key : null);
        var body = Chat(type + "/some-model");
        if (stream)
        {
            body["stream"] = true;
        }

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        if (stream)
        {
            var events = Sse.ParseData(text);
            Assert.Equal(Sse.Done, events[^1]);
            Assert.Equal("Hello", Sse.Json(events[0]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        }
        else
        {
            Assert.Equal("Hello", Sse.Json(text).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }

        Assert.Equal(new Uri(url), Assert.Single(Addressed));
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("POST", sent.Method);
        Assert.Equal(cloud ? "Bearer " + Key : null, sent.Header("Authorization"));
        Assert.Equal("some-model", sent.Body!.Value.GetProperty("model").GetString());
        Assert.Equal(stream, sent.Body!.Value.TryGetProperty("stream", out var s) && s.GetBoolean());
    }

    [Theory]
    [InlineData("groq", "https://api.groq.com/openai/v1/models")]
    [InlineData("mistral", "https://api.mistral.ai/v1/models")]
    [InlineData("deepseek", "https://api.deepseek.com/models")]
    [InlineData("openrouter", "https://openrouter.ai/api/v1/models")]
    [InlineData("ollama", "http://localhost:11434/v1/models")]
    public async Task The_models_list_comes_from_the_preset_models_endpoint(string type, string url)
    {
        await using var host = await StartAsync(type, key: type == "ollama" ? null : Key);

        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);

        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Uri(url), Assert.Single(Addressed));
        Assert.Contains(json.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == type + "/gpt-4o-mini");
    }

    [Fact]
    public async Task Perplexity_has_no_models_endpoint_so_only_its_configured_models_are_listed()
    {
        await using var host = await StartAsync("perplexity");

        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);

        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(Upstream.Requests); // never asked (it would answer 404 and be left out after the wait)
        Assert.DoesNotContain(json.GetProperty("data").EnumerateArray(), static m => m.GetProperty("id").GetString()!.StartsWith("perplexity/", StringComparison.Ordinal));
        Assert.Contains(json.GetProperty("data").EnumerateArray(), static m => m.GetProperty("id").GetString()!.StartsWith("local/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_configured_BaseUrl_wins_and_the_quirks_still_apply()
    {
        await using var host = await StartAsync("groq", configure: p => p.BaseUrl = Upstream.BaseUrl);

        await ChatAsync(host, Chat("groq/llama-3.3-70b-versatile", ("logprobs", true)));

        Assert.Equal(new Uri(Upstream.BaseUrl + "/chat/completions"), Assert.Single(Addressed));
        Assert.False(Has(SentBody(), "logprobs"));
    }

    [Theory]
    [InlineData("vllm", "http://localhost:8000/v1/chat/completions")]
    [InlineData("lmstudio", "http://localhost:1234/v1/chat/completions")]
    public async Task A_local_server_gets_a_key_when_one_is_configured(string type, string url)
    {
        await using var host = await StartAsync(type, key: "local-token");

        await ChatAsync(host, Chat(type + "/m"));

        Assert.Equal(new Uri(url), Assert.Single(Addressed));
        Assert.Equal("Bearer local-token", Assert.Single(Upstream.Requests).Header("Authorization"));
    }

    [Fact]
    public async Task A_cloud_preset_without_a_key_fails_at_start_naming_the_variable()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () => await StartAsync("groq", key: null));

        Assert.Contains("Bifrost:Providers:groq:Keys: type 'groq' needs a key", ex.Message, StringComparison.Ordinal);
        Assert.Contains("env:GROQ_API_KEY", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cloud_preset_may_carry_its_auth_in_Headers_instead_of_Keys()
    {
        await using var host = await StartAsync("together", key: null, configure: p => p.Headers["Authorization"] = "Bearer from-header");

        await ChatAsync(host, Chat("together/m"));

        Assert.Equal("Bearer from-header", Assert.Single(Upstream.Requests).Header("Authorization"));
    }

    [Fact]
    public async Task A_preset_BaseUrl_must_be_an_http_url()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () => await StartAsync("mistral", configure: p => p.BaseUrl = "ftp://example.com/v1"));

        Assert.Contains("Bifrost:Providers:mistral:BaseUrl 'ftp://example.com/v1' must be an absolute http(s) URL", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_provider_named_like_a_preset_without_Type_stays_openai_and_the_error_names_the_preset()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () => await StartAsync(type: null!, name: "groq"));

        Assert.Contains("Bifrost:Providers:groq:BaseUrl is required", ex.Message, StringComparison.Ordinal);
        Assert.Contains("set \"Type\": \"groq\" to use https://api.groq.com/openai/v1", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("groq")]
    [InlineData("gemini")] // e.g. Google's OpenAI-compatible endpoint (…/v1beta/openai): only Type gemini is the native API
    [InlineData("cohere")] // e.g. Cohere's compatibility API: only Type cohere is the native v2 API
    [InlineData("azure")] // only Type azure uses Azure's URLs and api-key header
    public async Task A_provider_named_like_a_preset_with_a_BaseUrl_and_no_Type_is_passed_through_unchanged(string name)
    {
        await using var host = await StartAsync(type: null!, name: name, configure: p => p.BaseUrl = Upstream.BaseUrl);

        await ChatAsync(host, Chat(name + "/m", ("logprobs", true), ("seed", 7), ("store", true)));

        var body = SentBody();
        Assert.True(body.GetProperty("logprobs").GetBoolean());
        Assert.Equal(7, body.GetProperty("seed").GetInt32());
        Assert.True(body.GetProperty("store").GetBoolean());
    }

    [Theory]
    [InlineData(429, "rate_limit_exceeded")]
    [InlineData(401, "invalid_api_key")]
    [InlineData(503, "server_error")]
    public async Task Upstream_errors_reach_the_client_with_their_status(int status, string code)
    {
        Upstream.Enqueue(FakeResponses.Error(status, "upstream says no", type: "invalid_request_error", code: code, headers: ("retry-after", "3")));
        await using var host = await StartAsync("groq");

        var json = await ChatAsync(host, Chat("groq/m"), (HttpStatusCode)status);

        Assert.Equal("upstream says no", json.GetProperty("error").GetProperty("message").GetString());
        Assert.DoesNotContain(Key, json.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task What_a_preset_changed_is_logged_by_field_name_never_with_values_or_the_key()
    {
        await using var host = await StartAsync("groq");

        await ChatAsync(host, Chat("groq/m", ("logprobs", true), ("logit_bias", new JsonObject { ["50256"] = -100 })));

        var message = Assert.Single(Logs.Messages(1060));
        Assert.Contains("Preset 'groq' adjusted the request for provider 'groq'", message, StringComparison.Ordinal);
        Assert.Contains("-logprobs", message, StringComparison.Ordinal);
        Assert.Contains("-logit_bias", message, StringComparison.Ordinal);
        Assert.DoesNotContain("50256", message, StringComparison.Ordinal);
        Assert.DoesNotContain(Logs.Entries, e => e.Message.Contains(Key, StringComparison.Ordinal));
    }
}
