using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Anthropic;
using Bifrost.Middleware.Tests.Gemini;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>The embedded catalog prices Vertex answers (https://cloud.google.com/vertex-ai/generative-ai/pricing), through the fake.</summary>
public sealed class VertexPricingTests : VertexTestBase
{
    [Fact]
    public async Task A_gemini_2_5_pro_answer_carries_its_cost()
    {
        Upstream.RespondGemini = _ => FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("Hi.")), prompt: 1_000_000, candidates: 300_000);
        await using var host = await StartHostAsync();

        var (status, body) = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "vertex/gemini-2.5-pro", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) });

        Assert.Equal(HttpStatusCode.OK, status);
        var json = JsonDocument.Parse(body).RootElement;
        Assert.Equal(300_000, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // gemini-2.5-pro: 1.25 per 1M input, 10.00 per 1M output
        Assert.Equal(1.25 + 3.00, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task A_gemini_2_5_flash_answer_costs_thinking_as_output_and_cached_input_at_the_cached_price()
    {
        Upstream.RespondGemini = _ => FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("Hi.")), prompt: 1_000_000, candidates: 100_000, thoughts: 100_000, cached: 500_000);
        await using var host = await StartHostAsync();

        var (status, body) = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "vertex/gemini-2.5-flash", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) });

        Assert.Equal(HttpStatusCode.OK, status);
        var json = JsonDocument.Parse(body).RootElement;
        Assert.Equal(200_000, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // gemini-2.5-flash on Vertex: 0.30 input, 0.03 cached input, 2.50 output (thinking included), per 1M
        Assert.Equal((0.5 * 0.30) + (0.5 * 0.03) + (0.2 * 2.50), json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task A_claude_answer_with_a_dated_vertex_id_costs_its_familys_price()
    {
        Upstream.RespondClaude = _ => FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("Hi.")), input: 1_000_000, output: 200_000);
        await using var host = await StartHostAsync();

        var (status, body) = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "vertex/claude-sonnet-4-5@20250929", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) });

        Assert.Equal(HttpStatusCode.OK, status);
        var json = JsonDocument.Parse(body).RootElement;
        Assert.Equal(1_000_000, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        // claude-sonnet-4-5 on Vertex: 3.00 per 1M input, 15.00 per 1M output
        Assert.Equal(3.00 + 3.00, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }
}
