using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>An upstream SSE stream relayed to the client chunk by chunk.</summary>
public sealed class StreamingRelayTests
{
    [Fact]
    public async Task Chunks_are_relayed_in_order_with_usage_chunk_done_marker_and_chunk_indexes()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Sse(
            FakeResponses.Chunk("gpt-4o-mini", role: "assistant", content: ""),
            FakeResponses.Chunk("gpt-4o-mini", content: "Hel"),
            FakeResponses.Chunk("gpt-4o-mini", content: "lo"),
            FakeResponses.Chunk("gpt-4o-mini", finishReason: "stop"),
            FakeResponses.UsageChunk("gpt-4o-mini", prompt: 8, completion: 2)));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(Chat(stream: true, extra: "\"stream_options\":{\"include_usage\":true}"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await ReadSseDataAsync(response);
        Assert.Equal(6, events.Count);
        Assert.Equal("[DONE]", events[^1]);

        var chunks = events[..^1].Select(Parse).ToList();
        for (var i = 0; i < chunks.Count; i++)
        {
            var chunk = chunks[i];
            Assert.Equal("chat.completion.chunk", chunk.GetProperty("object").GetString());
            Assert.Equal("chatcmpl-fake", chunk.GetProperty("id").GetString());
            var extra = chunk.GetProperty("extra_fields");
            Assert.Equal(i, extra.GetProperty("chunk_index").GetInt32());
            Assert.Equal("openai", extra.GetProperty("provider").GetString());
            Assert.Equal("gpt-4o-mini", extra.GetProperty("model_requested").GetString());
            Assert.Equal("chat_completion_stream", extra.GetProperty("request_type").GetString());
            Assert.Equal(JsonValueKind.Number, extra.GetProperty("latency").ValueKind);
        }

        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("Hello", string.Concat(chunks.Take(4).Select(static c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : "")));
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(JsonValueKind.Null, chunks[i].GetProperty("choices")[0].GetProperty("finish_reason").ValueKind);
        }

        Assert.Equal("stop", chunks[3].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, chunks[4].GetProperty("choices").GetArrayLength());
        Assert.Equal(10, chunks[4].GetProperty("usage").GetProperty("total_tokens").GetInt32());

        var received = Assert.Single(upstream.Requests);
        Assert.Equal("text/event-stream", received.Header("Accept"));
        var body = Assert.NotNull(received.Body);
        Assert.Equal("gpt-4o-mini", body.GetProperty("model").GetString());
        Assert.True(body.GetProperty("stream").GetBoolean());
        Assert.True(body.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Fact]
    public async Task Comments_event_names_and_blank_data_from_upstream_are_not_relayed_as_chunks()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        var raw = ": OPENROUTER PROCESSING\n\n"
            + "data: " + FakeResponses.Chunk("m", role: "assistant", content: "A") + "\n\n"
            + ": keep-alive\n\n"
            + "event: message\ndata: " + FakeResponses.Chunk("m", content: "B", finishReason: "stop") + "\n\n"
            + "data: [DONE]\n\n";
        upstream.Enqueue(FakeResponses.Body(200, "text/event-stream", raw));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ReadSseDataAsync(response);
        Assert.Equal(3, events.Count);
        Assert.Equal("A", Parse(events[0]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("B", Parse(events[1]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal(1, Parse(events[1]).GetProperty("extra_fields").GetProperty("chunk_index").GetInt32());
        Assert.Equal("[DONE]", events[2]);
    }

    [Fact]
    public async Task Stream_without_upstream_done_marker_still_ends_with_done()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Body(200, "text/event-stream", "data: " + FakeResponses.Chunk("m", role: "assistant", content: "only", finishReason: "stop") + "\n\n"));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);

        var events = await ReadSseDataAsync(response);
        Assert.Equal(2, events.Count);
        Assert.Equal("only", Parse(events[0]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("[DONE]", events[1]);
    }
}
