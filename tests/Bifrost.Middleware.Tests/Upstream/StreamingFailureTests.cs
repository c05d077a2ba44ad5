using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Stream failures: before the first chunk they are retried or fall back; after it they end the stream with one error event.</summary>
public sealed class StreamingFailureTests
{
    private static string[] TwoChunks(string model = "gpt-4o-mini") =>
        [FakeResponses.Chunk(model, role: "assistant", content: "one "), FakeResponses.Chunk(model, content: "two ")];

    [Fact]
    public async Task Failure_before_the_first_chunk_is_retried()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Error(500, "warming up"), FakeResponses.Sse([.. TwoChunks(), FakeResponses.Chunk("gpt-4o-mini", finishReason: "stop")]));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ReadSseDataAsync(response);
        Assert.Equal(4, events.Count);
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(0, Parse(events[0]).GetProperty("extra_fields").GetProperty("chunk_index").GetInt32());
        Assert.Equal(2, upstream.ChatCalls);
    }

    [Fact]
    public async Task Failure_before_the_first_chunk_falls_back()
    {
        await using var a = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(503, "overloaded"));
        await using var b = await FakeOpenAIUpstream.StartAsync();
        b.Enqueue(FakeResponses.Sse(TwoChunks("model-b")));
        await using var host = await StartAsync(a, p => p.MaxRetries = 0, o => o.Providers["other"] = Provider(b));

        using var response = await host.SendStreamingAsync(Chat(stream: true, extra: "\"fallbacks\":[\"other/model-b\"]"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ReadSseDataAsync(response);
        Assert.Equal(3, events.Count);
        Assert.All(events[..^1], e => Assert.Equal("other", Parse(e).GetProperty("extra_fields").GetProperty("provider").GetString()));
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(1, a.ChatCalls);
        Assert.Equal("model-b", Assert.Single(b.Requests).Body!.Value.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Failure_of_every_attempt_before_the_first_chunk_is_a_plain_json_error()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(500, "still down", "server_error"));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 1);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("still down", AssertProviderError(await GatewayHost.ReadJsonAsync(response), 500).GetProperty("message").GetString());
        Assert.Equal(2, upstream.ChatCalls);
    }

    [Fact]
    public async Task Error_event_after_two_chunks_is_relayed_as_one_error_event_without_retry()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Handler = FakeResponses.Sse([.. TwoChunks(), """{"error":{"message":"The model crashed mid-way","type":"server_error","code":"model_crash"}}"""]);
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 2);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ReadSseDataAsync(response);
        Assert.Equal(3, events.Count);
        Assert.Equal("one ", Parse(events[0]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("two ", Parse(events[1]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        var error = Parse(events[2]);
        Assert.False(error.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal("The model crashed mid-way", error.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("server_error", error.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("model_crash", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("openai", error.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(1, upstream.ChatCalls);
    }

    [Fact]
    public async Task Connection_dropped_mid_stream_ends_with_an_error_event_without_retry()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        upstream.Handler = FakeResponses.SseThenDrop(release.Task, TwoChunks());
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 2);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        var first = await ReadEventAsync(reader, Ct);
        var second = await ReadEventAsync(reader, Ct);

        // Both chunks reached the client: now the upstream drops the connection.
        release.SetResult();
        var rest = new List<string>();
        while (await ReadEventAsync(reader, Ct) is { } data)
        {
            rest.Add(data);
        }

        Assert.Equal("one ", Parse(first!).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("two ", Parse(second!).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        var error = Parse(Assert.Single(rest));
        Assert.False(error.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(502, error.GetProperty("status_code").GetInt32());
        Assert.Equal("provider_unreachable", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(1, upstream.ChatCalls);
    }
}
