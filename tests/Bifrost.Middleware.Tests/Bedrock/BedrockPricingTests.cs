using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>The embedded catalog prices Bedrock answers (https://aws.amazon.com/bedrock/pricing, on-demand us-east-1), through the fake.</summary>
public sealed class BedrockPricingTests : BedrockTestBase
{
    [Fact]
    public async Task A_nova_pro_answer_through_a_cross_region_profile_carries_its_cost()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.Text("Hi.")), input: 1_000_000, output: 500_000);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "bedrock/us.amazon.nova-pro-v1:0", ["messages"] = Messages(User("hi")) });

        Assert.Equal(1_000_000, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(500_000, json.GetProperty("usage").GetProperty("completion_tokens").GetInt64());
        // amazon.nova-pro-v1:0: 0.80 per 1M input, 3.20 per 1M output
        Assert.Equal(0.80 + 1.60, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
        Assert.Equal("us.amazon.nova-pro-v1:0", Assert.Single(Upstream.ChatRequests).ModelId);
    }

    [Fact]
    public async Task A_claude_sonnet_4_5_answer_costs_the_geographic_profiles_price()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.Text("Hi.")), input: 1_000_000, output: 100_000);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", ["messages"] = Messages(User("hi")) });

        // us.* (geographic) profile: 3.30 / 16.50 per 1M, 10% over the global profile's 3 / 15
        Assert.Equal(3.30 + 1.65, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task A_llama_3_3_answer_through_the_us_profile_costs_its_on_demand_price()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.Text("Hi.")), input: 2_000_000, output: 500_000);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "bedrock/us.meta.llama3-3-70b-instruct-v1:0", ["messages"] = Messages(User("hi")) });

        // meta.llama3-3-70b-instruct-v1:0: 0.72 per 1M input and output
        Assert.Equal((2 * 0.72) + (0.5 * 0.72), json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task Titan_embeddings_cost_their_input_tokens()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "bedrock/amazon.titan-embed-text-v2:0", ["input"] = new JsonArray("one two three", "four five") });

        // the fake counts words: 5 input tokens at 0.02 per 1M
        Assert.Equal(5, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(5 * 0.02 / 1e6, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 15);
    }

    [Fact]
    public async Task A_model_without_a_verified_price_has_no_cost()
    {
        Upstream.Respond = _ => FakeBedrockUpstream.Answer(new JsonArray(FakeBedrockUpstream.Text("Hi.")), input: 1_000, output: 100);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "bedrock/meta.llama3-70b-instruct-v1:0", ["messages"] = Messages(User("hi")) });

        Assert.Equal(1_000, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt64());
        Assert.False(json.TryGetProperty("extra_fields", out var extra) && extra.TryGetProperty("cost", out _), json.ToString());
    }
}
