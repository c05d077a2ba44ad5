using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>The embedded catalog prices Gemini answers (https://ai.google.dev/gemini-api/docs/pricing), through the fake.</summary>
public sealed class GeminiPricingTests : GeminiTestBase
{
    [Fact]
    public async Task A_gemini_answer_carries_its_cost_with_thinking_tokens_at_the_output_price()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("Hi.")), prompt: 1_000_000, candidates: 600_000, thoughts: 400_000);
        await using var host = await StartHostAsync();

        var (status, body) = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject
        {
            ["model"] = "gemini/gemini-2.5-flash",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }),
        });

        Assert.Equal(HttpStatusCode.OK, status);
        var json = JsonDocument.Parse(body).RootElement;
        Assert.Equal(1_000_000, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // gemini-2.5-flash: 1M input at 0.30 + 1M output (600k answer + 400k thinking) at 2.50
        Assert.Equal(2.80, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task Cached_prompt_tokens_cost_the_cached_price()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("Hi.")), prompt: 1_000_000, candidates: 0, cached: 800_000);
        await using var host = await StartHostAsync();

        var (_, body) = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "gemini/gemini-2.5-pro", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) });

        var json = JsonDocument.Parse(body).RootElement;
        Assert.Equal(800_000, json.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        // gemini-2.5-pro: 200k uncached at 1.25 + 800k cached at 0.125
        Assert.Equal((0.2 * 1.25) + (0.8 * 0.125), json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task A_dated_or_unknown_gemini_model_is_priced_only_when_listed()
    {
        Upstream.Respond = _ => FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("Hi.")), prompt: 2_000_000, candidates: 1_000_000);
        await using var host = await StartHostAsync();

        var (_, pro) = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "gemini/gemini-2.5-pro", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) });
        var (_, unknown) = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "gemini/gemini-9-ultra", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) });

        Assert.Equal((2 * 1.25) + 10.00, JsonDocument.Parse(pro).RootElement.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
        Assert.False(JsonDocument.Parse(unknown).RootElement.GetProperty("extra_fields").TryGetProperty("cost", out _));
    }
}
