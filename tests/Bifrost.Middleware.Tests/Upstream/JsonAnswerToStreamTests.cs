using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Some OpenAI-compatible servers ignore <c>"stream": true</c> and answer with one JSON completion: it is relayed as a stream.</summary>
public sealed class JsonAnswerToStreamTests
{
    [Fact]
    public async Task A_json_answer_to_a_stream_request_is_relayed_as_sse_chunks()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Json(200, """{"id":"chatcmpl-j","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"whole answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"""));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 0);

        using var response = await host.SendStreamingAsync(Chat(stream: true, extra: "\"stream_options\":{\"include_usage\":true}"), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await ReadSseDataAsync(response);

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var text = string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out _))
            .Select(d => d.GetProperty("content").GetString()));
        Assert.Equal("whole answer", text);
        var finishes = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("finish_reason")).ToList();
        Assert.All(finishes.SkipLast(1), f => Assert.Equal(JsonValueKind.Null, f.ValueKind));
        Assert.Equal("stop", finishes[^1].GetString());
        Assert.Equal(5, chunks[^1].GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Single(upstream.Requests);
    }
}
