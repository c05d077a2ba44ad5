using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary><c>extra_fields.cost</c> over HTTP: sync answers, the usage chunk of a stream, async results, batch lines, and its absence for unknown models.</summary>
public sealed class PricingHttpTests
{
    private static void PriceEcho(BifrostOptions options) =>
        options.Pricing["local/echo"] = new ModelPriceOptions { InputPerMillion = 1.0, OutputPerMillion = 2.0, BatchDiscount = 0.5 };

    private static JsonObject Chat(string text = "what does it cost") => new()
    {
        ["model"] = "local/echo",
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }),
    };

    private static double ChatCost(JsonElement usage, double factor = 1) =>
        ((usage.GetProperty("prompt_tokens").GetInt32() * 1.0) + (usage.GetProperty("completion_tokens").GetInt32() * 2.0)) / 1e6 * factor;

    [Fact]
    public async Task A_chat_answer_carries_its_cost()
    {
        await using var host = await StartLocalAsync(PriceEcho);

        var json = await host.PostOkAsync("/openai/v1/chat/completions", Chat());

        var usage = json.GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.Equal(ChatCost(usage), json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
    }

    [Fact]
    public async Task An_openai_answer_with_cached_and_reasoning_tokens_is_priced_from_the_catalog()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Json(200, """
            {"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"o4-mini-2025-04-16",
             "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500,
                      "prompt_tokens_details":{"cached_tokens":400},"completion_tokens_details":{"reasoning_tokens":200}}}
            """));
        await using var host = await StartLocalAsync(options => options.Providers["work-openai"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = upstream.BaseUrl,
            MaxRetries = 0,
            Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
        });
        var body = Chat();
        body["model"] = "work-openai/o4-mini-2025-04-16";

        var json = await host.PostOkAsync("/openai/v1/chat/completions", body);

        // o4-mini (catalog): 1.10 input, 0.275 cached input, 4.40 output (reasoning tokens are output tokens).
        Assert.Equal(((600 * 1.10) + (400 * 0.275) + (500 * 4.40)) / 1e6, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
    }

    [Fact]
    public async Task An_unknown_model_has_no_cost_field()
    {
        await using var host = await StartLocalAsync();

        var json = await host.PostOkAsync("/openai/v1/chat/completions", Chat());

        Assert.True(json.TryGetProperty("usage", out _));
        var extra = json.GetProperty("extra_fields");
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.False(extra.TryGetProperty("cost", out _), $"no cost for an unpriced model: {extra}");
    }

    [Fact]
    public async Task Embeddings_cost_their_input_tokens()
    {
        await using var host = await StartLocalAsync(PriceEcho);

        var json = await host.PostOkAsync("/openai/v1/embeddings", new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("one two three", "four five"), ["dimensions"] = 8 });

        var tokens = json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        Assert.True(tokens > 0);
        Assert.Equal(tokens * 1.0 / 1e6, json.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
    }

    [Fact]
    public async Task A_stream_carries_the_cost_on_its_usage_chunk_only()
    {
        await using var host = await StartLocalAsync(PriceEcho);
        var body = Chat("stream me some words please");
        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };

        using var response = await host.PostAsync("/openai/v1/chat/completions", body);
        var (chunks, done) = await ReadDataStreamAsync(response);

        Assert.True(done);
        var last = chunks[^1];
        Assert.True(last.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object, $"the last chunk has the usage: {last}");
        Assert.Equal(ChatCost(usage), last.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
        Assert.All(chunks[..^1], chunk => Assert.False(chunk.GetProperty("extra_fields").TryGetProperty("cost", out _), $"only the usage chunk has a cost: {chunk}"));
    }

    [Fact]
    public async Task A_responses_stream_carries_the_cost_on_response_completed()
    {
        await using var host = await StartLocalAsync(PriceEcho);
        var body = new JsonObject { ["model"] = "local/echo", ["input"] = "stream a response", ["stream"] = true };

        using var response = await host.PostAsync("/openai/v1/responses", body);
        var events = await ReadEventStreamAsync(response);

        var completed = events.Single(e => e.Type == "response.completed").Data;
        var usage = completed.GetProperty("response").GetProperty("usage");
        var expected = ((usage.GetProperty("input_tokens").GetInt32() * 1.0) + (usage.GetProperty("output_tokens").GetInt32() * 2.0)) / 1e6;
        Assert.Equal(expected, completed.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
        Assert.All(events.Where(e => e.Type != "response.completed"), e => Assert.False(e.Data.TryGetProperty("extra_fields", out var extra) && extra.TryGetProperty("cost", out _)));
    }

    [Fact]
    public async Task An_async_result_carries_the_cost()
    {
        await using var host = await StartLocalAsync(PriceEcho);
        var submitted = await host.PostOkAsync("/openai/v1/chat/completions", Chat(), ("x-bf-async", "true"));
        var id = submitted.GetProperty("id").GetString()!;

        var completed = await EventuallyAsync($"job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Post, "/openai/v1/chat/completions", "{}", ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
            return json.GetProperty("choices").GetArrayLength() > 0 ? json : (JsonElement?)null;
        });

        var result = completed!.Value;
        Assert.Equal(ChatCost(result.GetProperty("usage")), result.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
    }

    [Fact]
    public async Task A_batch_line_the_gateway_runs_is_charged_at_the_ordinary_price_not_the_batch_discount()
    {
        await using var host = await FileBatchHost.StartAsync(PriceEcho);

        var batch = await host.StartBatchAsync([BatchLines.Chat("a", "first line"), BatchLines.Chat("b", "the second line is longer")]);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);

        Assert.Empty(errors);
        Assert.Equal(2, output.Count);
        foreach (var line in output)
        {
            var body = line.GetProperty("response").GetProperty("body");
            Assert.Equal(ChatCost(body.GetProperty("usage"), factor: 1.0), body.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
        }
    }
}
