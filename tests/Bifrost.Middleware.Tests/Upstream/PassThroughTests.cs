using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>A successful call through the OpenAI-compatible adapter: what the upstream receives and what the client gets back.</summary>
public sealed class PassThroughTests
{
    private const string UpstreamAnswer = """
        {"id":"chatcmpl-42","object":"chat.completion","created":1700000001,"model":"gpt-4o-mini-2024-07-18",
         "system_fingerprint":"fp_abc123","service_tier":"default","custom_field":{"x":[1,2]},
         "choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","annotations":[],"reasoning":"short"},"logprobs":null,"finish_reason":"stop","vendor_choice":true}],
         "usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":4},"cost":0.0001}}
        """;

    [Fact]
    public async Task Response_passes_through_with_extra_fields_and_unknown_response_fields()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Json(200, UpstreamAnswer));
        await using var host = await StartAsync(upstream);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("chatcmpl-42", json.GetProperty("id").GetString());
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal(1700000001, json.GetProperty("created").GetInt64());
        Assert.Equal("gpt-4o-mini-2024-07-18", json.GetProperty("model").GetString());
        Assert.Equal("fp_abc123", json.GetProperty("system_fingerprint").GetString());
        Assert.Equal("default", json.GetProperty("service_tier").GetString());
        Assert.Equal(2, json.GetProperty("custom_field").GetProperty("x")[1].GetInt32());

        var choice = json.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.True(choice.GetProperty("vendor_choice").GetBoolean());
        Assert.Equal("Hi there", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("short", choice.GetProperty("message").GetProperty("reasoning").GetString());
        Assert.Equal(JsonValueKind.Array, choice.GetProperty("message").GetProperty("annotations").ValueKind);

        var usage = json.GetProperty("usage");
        Assert.Equal(12, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(4, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(0.0001, usage.GetProperty("cost").GetDouble());

        var extra = json.GetProperty("extra_fields");
        Assert.Equal("openai", extra.GetProperty("provider").GetString());
        Assert.Equal("gpt-4o-mini", extra.GetProperty("model_requested").GetString());
        Assert.Equal("chat_completion", extra.GetProperty("request_type").GetString());
        Assert.Equal(JsonValueKind.Number, extra.GetProperty("latency").ValueKind);
        Assert.True(extra.GetProperty("latency").GetInt64() >= 0);
        Assert.False(extra.TryGetProperty("chunk_index", out _));
    }

    [Fact]
    public async Task Upstream_gets_the_bare_model_no_fallbacks_and_every_other_field_unchanged()
    {
        const string clientBody = """
            {
              "model": "openai/gpt-4o-mini",
              "fallbacks": ["openai/gpt-4o"],
              "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is in it?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":3}"}
              ],
              "foo": {"bar": 1, "baz": [true, null, "x"]},
              "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}, "strict": true}}],
              "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
              "parallel_tool_calls": false,
              "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true, "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}},
              "logit_bias": {"50256": -100, "15496": 2.5},
              "seed": 1234567890123,
              "stop": "END",
              "temperature": 0.2,
              "top_p": 0.9,
              "n": 1,
              "max_completion_tokens": 256,
              "presence_penalty": 0.5,
              "frequency_penalty": -0.5,
              "logprobs": true,
              "top_logprobs": 3,
              "user": "user-7",
              "metadata": {"team": "core"},
              "store": false,
              "reasoning_effort": "low",
              "prediction": {"type": "content", "content": "x"},
              "modalities": ["text"]
            }
            """;
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream);

        using var response = await host.PostChatAsync(clientBody);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(upstream.Requests);
        Assert.Equal("POST", received.Method);
        Assert.Equal("/v1/chat/completions", received.Path);
        Assert.StartsWith("application/json", received.Header("Content-Type"), StringComparison.Ordinal);
        Assert.Equal("application/json", received.Header("Accept"));
        var body = Assert.NotNull(received.Body);
        Assert.Equal("gpt-4o-mini", body.GetProperty("model").GetString());
        Assert.False(body.TryGetProperty("fallbacks", out _));
        Assert.False(body.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True);
        Assert.Equal(JsonValueKind.String, body.GetProperty("stop").ValueKind);

        var sent = Parse(clientBody);
        foreach (var property in sent.EnumerateObject())
        {
            if (property.Name is "model" or "fallbacks")
            {
                continue;
            }

            Assert.True(body.TryGetProperty(property.Name, out var forwarded), $"'{property.Name}' was not forwarded upstream.");
            Assert.True(JsonElement.DeepEquals(property.Value, forwarded), $"'{property.Name}' changed: sent {property.Value.GetRawText()}, upstream got {forwarded.GetRawText()}.");
        }

        var names = body.EnumerateObject().Select(static p => p.Name).ToHashSet();
        names.ExceptWith(sent.EnumerateObject().Select(static p => p.Name));
        Assert.Empty(names);
    }

    [Fact]
    public async Task Stop_as_an_array_stays_an_array_and_the_unversioned_route_works_too()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream);

        using var response = await host.PostJsonAsync("/openai/chat/completions", Chat(extra: "\"stop\":[\"a\",\"b\"]"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = Assert.NotNull(Assert.Single(upstream.Requests).Body);
        Assert.True(JsonElement.DeepEquals(Parse("""["a","b"]"""), body.GetProperty("stop")));
    }
}
