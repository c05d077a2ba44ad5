using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>The embedded catalog prices Cohere answers (https://cohere.com/pricing), through the fake.</summary>
public sealed class CoherePricingTests : CohereTestBase
{
    [Fact]
    public async Task A_command_a_answer_carries_its_cost()
    {
        Upstream.Respond = _ => FakeCohereUpstream.Answer(new JsonArray(FakeCohereUpstream.Text("Hi.")), input: 2_000_002, output: 500_000);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/chat/completions", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("hi")) });

        var prompt = json.GetProperty("usage").GetProperty("prompt_tokens").GetInt64();
        var completion = json.GetProperty("usage").GetProperty("completion_tokens").GetInt64();
        Assert.Equal(500_000, completion);
        // command-a-03-2025: 2.50 per 1M input, 10.00 per 1M output
        Assert.Equal((prompt * 2.50 / 1e6) + 5.00, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
        Assert.InRange(json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9.9, 10.1);
    }

    [Fact]
    public async Task An_embed_v4_call_carries_the_cost_of_its_input_tokens()
    {
        Upstream.RespondEmbed = _ => JsonNode.Parse("""{"id":"e","embeddings":{"float":[[0.1,0.2]]},"meta":{"billed_units":{"input_tokens":1000000}}}""")!.AsObject();
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "cohere/embed-v4.0", ["input"] = "hello" });

        Assert.Equal(1_000_000, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(0.12, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }
}
