using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Testing;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>The attempt timeout of Anthropic streams: until the first chunk, as for every HTTP adapter.</summary>
public sealed class AnthropicTimeoutTests : AnthropicTestBase
{
    private static readonly string StreamBody = """{"model":"anthropic/claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"Hi"}]}""";

    [Fact]
    public async Task A_stream_whose_headers_arrive_but_no_chunk_follows_within_the_timeout_gives_a_retryable_504()
    {
        // Headers and a ping (which makes no chunk) come at once; message_start, the first chunk, only after 30 s.
        Upstream.RawStream = message => new[] { FakeAnthropicUpstream.Sse(new JsonObject { ["type"] = "ping" }) }.Concat(FakeAnthropicUpstream.Events(message));
        Upstream.Script = new ProviderScript { ChunkDelay = TimeSpan.FromSeconds(30) };
        await using var host = await StartHostAsync(p =>
        {
            p.Timeout = TimeSpan.FromMilliseconds(300);
            p.MaxRetries = 1;
        });

        // Bounded, so that a regression fails in seconds instead of hanging.
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        bound.CancelAfter(TimeSpan.FromSeconds(15));
        using var response = await host.SendStreamingAsync(StreamBody, bound.Token);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("provider_timeout", AssertProviderError(await Infrastructure.GatewayHost.ReadJsonAsync(response), 504).GetProperty("code").GetString());
        Assert.Equal(2, Upstream.MessageRequests.Count()); // retried: the timeout is retryable
    }

    [Fact]
    public async Task The_timeout_does_not_cut_an_Anthropic_stream_that_has_started()
    {
        // Every event after the first comes 400 ms apart: the whole stream lasts far longer than the 1 s timeout.
        Upstream.Script = new ProviderScript { Reply = "one two three four", ChunkDelay = TimeSpan.FromMilliseconds(250) };
        await using var host = await StartHostAsync(p =>
        {
            p.Timeout = TimeSpan.FromSeconds(1);
            p.MaxRetries = 0;
        });

        using var response = await host.SendStreamingAsync(StreamBody, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ReadSseDataAsync(response);
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal("one two three four", string.Concat(events.SkipLast(1).Select(e => Parse(e).GetProperty("choices").EnumerateArray().FirstOrDefault() is { ValueKind: System.Text.Json.JsonValueKind.Object } choice && choice.GetProperty("delta").TryGetProperty("content", out var content) ? content.GetString() : null)));
        Assert.Single(Upstream.MessageRequests);
    }
}
