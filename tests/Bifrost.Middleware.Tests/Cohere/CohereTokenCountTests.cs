using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Cohere;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>Input-token counting on Cohere: the request's text, rendered as the chat would send it, through <c>POST /v1/tokenize</c>.</summary>
public sealed class CohereTokenCountTests : CohereTestBase
{
    [Fact]
    public async Task Input_tokens_are_counted_with_Coheres_tokenizer_over_the_messages_and_tools()
    {
        await using var host = await StartHostAsync();
        var body = JsonNode.Parse("""
            { "model": "cohere/command-a-03-2025", "instructions": "Be brief.",
              "input": [ { "role": "user", "content": "How many tokens is this?" } ],
              "tools": [ { "type": "function", "name": "lookup", "description": "Look up a word", "parameters": { "type": "object" } } ] }
            """)!.AsObject();

        var json = await PostAsync(host, "/openai/v1/responses/input_tokens", body);

        // The fake counts one token per word: "Be brief." (2) + "How many tokens is this?" (5) + lookup (1) + "Look up a word" (4) + the schema (1).
        Assert.Equal(13, json.GetProperty("input_tokens").GetInt32());
        Assert.Equal("native", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        var sent = Assert.Single(Upstream.Requests, r => r.Path == "/v1/tokenize");
        Assert.Equal("Bearer " + Key, sent.Headers["authorization"]);
        AssertJson("""
            { "text": "Be brief.\nHow many tokens is this?\nlookup\nLook up a word\n{\"type\":\"object\"}", "model": "command-a-03-2025" }
            """, sent.Body);
        Assert.Empty(Upstream.ChatRequests);
    }

    [Fact]
    public async Task Assistant_tool_calls_and_tool_results_are_counted_too()
    {
        await using var host = await StartHostAsync();
        var body = JsonNode.Parse("""
            { "model": "cohere/command-a-03-2025",
              "input": [
                { "role": "user", "content": "weather in Paris" },
                { "type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" },
                { "type": "function_call_output", "call_id": "call_1", "output": "sunny and warm" } ] }
            """)!.AsObject();

        var json = await PostAsync(host, "/openai/v1/responses/input_tokens", body);

        var text = Assert.Single(Upstream.Requests, r => r.Path == "/v1/tokenize").Body!["text"]!.GetValue<string>();
        Assert.Equal("weather in Paris\nget_weather\n{\"city\":\"Paris\"}\nsunny and warm", text);
        Assert.Equal(8, json.GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task A_text_longer_than_tokenize_accepts_is_counted_in_pieces_and_summed()
    {
        await using var host = await StartHostAsync();
        var words = string.Join(' ', Enumerable.Repeat("abcd", 20_000)); // 99,999 characters
        var body = new JsonObject { ["model"] = "cohere/command-a-03-2025", ["input"] = words };

        var json = await PostAsync(host, "/openai/v1/responses/input_tokens", body);

        var calls = Upstream.Requests.Where(r => r.Path == "/v1/tokenize").Select(r => r.Body!["text"]!.GetValue<string>()).ToList();
        Assert.Equal(2, calls.Count);
        Assert.Equal(CohereAdapter.MaxTokenizeChars, calls[0].Length);
        Assert.Equal(words, string.Concat(calls));
        // 65,536 = 13,107 words of 5 characters + "a": the split word is counted in both pieces.
        Assert.Equal(20_001, json.GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task A_refused_tokenize_call_is_the_providers_error()
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(401, "invalid api token"));
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/responses/input_tokens", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["input"] = "hello there" }, HttpStatusCode.Unauthorized);

        Assert.Equal("invalid api token", json.GetProperty("error").GetProperty("message").GetString());
        Assert.DoesNotContain(Key, json.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unavailable_tokenizer_falls_back_to_the_local_estimate()
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(503, "service unavailable"));
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/responses/input_tokens", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["input"] = "hello there" });

        Assert.Equal("estimated", json.GetProperty("extra_fields").GetProperty("count_method").GetString());
        Assert.True(json.GetProperty("input_tokens").GetInt32() > 0);
        Assert.Single(Upstream.Requests, r => r.Path == "/v1/tokenize");
    }

    [Fact]
    public void The_rendering_keeps_text_thinking_plans_calls_and_tools_in_order()
    {
        var request = new CohereChatRequest
        {
            Messages =
            [
                new CohereMessage { Role = "system", Content = System.Text.Json.JsonDocument.Parse("\"sys\"").RootElement },
                new CohereMessage { Role = "assistant", Content = System.Text.Json.JsonDocument.Parse("""[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"ok"}]""").RootElement, ToolPlan = "plan", ToolCalls = [new CohereToolCall { Function = new CohereFunctionCall { Name = "f", Arguments = "{}" } }] },
                new CohereMessage { Role = "user", Content = System.Text.Json.JsonDocument.Parse("""[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]""").RootElement },
            ],
            Tools = [new CohereTool { Function = new CohereFunction { Name = "f", Description = "does f" } }],
        };

        Assert.Equal("sys\nhmm\nok\nplan\nf\n{}\nf\ndoes f", CohereAdapter.RenderForCounting(request));
    }
}
