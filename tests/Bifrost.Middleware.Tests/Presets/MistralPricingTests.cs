using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Presets;

/// <summary>The embedded catalog prices the mistral preset's answers (https://mistral.ai/pricing), through the fake.</summary>
public sealed class MistralPricingTests : PresetTestBase
{
    [Fact]
    public async Task A_mistral_large_2411_answer_carries_its_cost()
    {
        Upstream.Handler = static (context, _, ct) => Json(
            context,
            """{"id":"c1","object":"chat.completion","created":1,"model":"mistral-large-2411","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000000,"completion_tokens":250000,"total_tokens":1250000}}""",
            ct);
        await using var host = await StartAsync("mistral");

        var json = await ChatAsync(host, Chat("mistral/mistral-large-2411"));

        Assert.Equal(250_000, json.GetProperty("usage").GetProperty("completion_tokens").GetInt64());
        // mistral-large-2411: 2.00 per 1M input, 6.00 per 1M output
        Assert.Equal(2.00 + 1.50, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task A_provider_named_otherwise_is_priced_by_its_mistral_type()
    {
        Upstream.Handler = static (context, _, ct) => Json(
            context,
            """{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"mistral-embed","usage":{"prompt_tokens":2000000,"total_tokens":2000000}}""",
            ct);
        await using var host = await StartAsync("mistral", name: "eu-llm");

        using var response = await host.PostJsonAsync("/openai/v1/embeddings", """{"model":"eu-llm/mistral-embed","input":"hello"}""", Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // mistral-embed: 0.10 per 1M input tokens
        Assert.Equal(0.20, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    private static Task Json(HttpContext context, string body, CancellationToken cancellationToken)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(body, cancellationToken);
    }
}
