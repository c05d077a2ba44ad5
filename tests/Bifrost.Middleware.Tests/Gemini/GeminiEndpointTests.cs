using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>The Gemini provider through the gateway's HTTP endpoints (<c>/openai/v1/...</c> with <c>gemini/&lt;model&gt;</c>).</summary>
public sealed class GeminiEndpointTests : GeminiTestBase
{
    private static JsonObject Body(bool stream = false) => new()
    {
        ["model"] = "gemini/gemini-2.5-flash",
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi Gemini" }),
        ["stream"] = stream,
    };

    [Fact]
    public async Task Chat_completions_reach_Gemini_and_answer_in_the_OpenAI_shape()
    {
        await using var host = await StartHostAsync();

        var (status, text) = await PostAsync(host, "/openai/v1/chat/completions", Body());

        Assert.Equal(HttpStatusCode.OK, status);
        var json = JsonDocument.Parse(text).RootElement;
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal("echo: Hi Gemini", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", json.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(21, json.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-2.5-flash:generateContent", sent.Path);
        Assert.Equal(FakeGeminiUpstream.Key, sent.Headers["x-goog-api-key"]);
    }

    [Fact]
    public async Task Streamed_chat_completions_are_OpenAI_SSE_ending_with_DONE()
    {
        await using var host = await StartHostAsync();

        var (status, text) = await PostAsync(host, "/openai/v1/chat/completions", Body(stream: true));

        Assert.Equal(HttpStatusCode.OK, status);
        var data = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        var chunks = data[..^1].Select(d => JsonDocument.Parse(d).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        var content = string.Concat(chunks.Select(c => c.GetProperty("choices").EnumerateArray().Select(ch => ch.GetProperty("delta").TryGetProperty("content", out var v) ? v.GetString() : null).FirstOrDefault()));
        Assert.Equal("echo: Hi Gemini", content);
        Assert.Equal("stop", chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("?alt=sse", Assert.Single(Upstream.Requests).Query);
    }

    [Fact]
    public async Task A_rate_limit_answers_429_in_the_Bifrost_shape_and_the_key_is_in_no_answer_or_log()
    {
        var logs = new LogSink();
        await using var host = await StartHostAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        Upstream.Failures.Enqueue(new FakeGeminiUpstream.Failure(429, "Resource has been exhausted.", null, TimeSpan.FromSeconds(4)));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", Body().ToJsonString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal("4", response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("Resource has been exhausted.", error.GetProperty("message").GetString());
        Assert.Equal("RESOURCE_EXHAUSTED", error.GetProperty("code").GetString());
        Assert.DoesNotContain(FakeGeminiUpstream.Key, text, StringComparison.Ordinal);
        Assert.NotEmpty(logs.Entries);
        Assert.All(logs.Entries, e => Assert.DoesNotContain(FakeGeminiUpstream.Key, e.Message + e.Exception, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_bad_key_answers_401_without_the_key()
    {
        const string wrongKey = "AIza-not-the-right-one";
        var logs = new LogSink();
        await using var host = await StartHostAsync(o => o.Keys = [new ProviderKeyOptions { Value = wrongKey }], s => s.AddSingleton<ILoggerProvider>(logs));

        var (status, text) = await PostAsync(host, "/openai/v1/chat/completions", Body());

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("API_KEY_INVALID", JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain(wrongKey, text, StringComparison.Ordinal);
        Assert.All(logs.Entries, e => Assert.DoesNotContain(wrongKey, e.Message + e.Exception, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Embeddings_in_base64_are_encoded_by_the_gateway()
    {
        await using var host = await StartHostAsync();

        var (status, text) = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "gemini/gemini-embedding-001", ["input"] = "abcd", ["encoding_format"] = "base64", ["dimensions"] = 2 });

        Assert.Equal(HttpStatusCode.OK, status);
        var embedding = JsonDocument.Parse(text).RootElement.GetProperty("data")[0].GetProperty("embedding").GetString();
        Assert.Equal(new EmbeddingVector([4f, 4.25f]).ToBase64(), embedding);
        Assert.Equal(2, Assert.Single(Upstream.Requests).Body!["outputDimensionality"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_bad_base_url_fails_validation_at_start()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => StartHostAsync(o => o.BaseUrl = "ftp://example.com"));

        Assert.Contains("Providers:gemini:BaseUrl 'ftp://example.com' must be an absolute http(s) URL.", error.Message, StringComparison.Ordinal);
    }
}
