using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Anthropic;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>An Anthropic answer's cost over HTTP: cache reads and cache writes at their own prices.</summary>
public sealed class PricingAnthropicTests : AnthropicTestBase
{
    [Fact]
    public async Task An_anthropic_answer_charges_cache_reads_and_writes_at_their_prices()
    {
        await using var host = await StartHostAsync();
        Upstream.Respond = _ => FakeAnthropicUpstream.Message(
            new JsonArray(FakeAnthropicUpstream.TextBlock("cached")), input: 100, output: 50, cacheCreation: 300, cacheRead: 600);

        var json = await ChatAsync(host, new JsonObject { ["model"] = "anthropic/claude-sonnet-4-5-20250929", ["messages"] = Messages(User("hi")) });

        Assert.Equal(1000, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        // Sonnet 4.5 (catalog): 3.00 input, 0.30 cache read, 3.75 cache write, 15.00 output.
        var expected = ((100 * 3.00) + (600 * 0.30) + (300 * 3.75) + (50 * 15.00)) / 1e6;
        Assert.Equal(expected, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
    }
}
