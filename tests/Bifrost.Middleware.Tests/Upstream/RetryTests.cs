using System.Diagnostics;
using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Retries of retryable upstream failures: counts, Retry-After, and what is never retried.</summary>
public sealed class RetryTests
{
    [Fact]
    public async Task Server_error_then_success_answers_after_two_upstream_calls()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Error(500, "transient"), FakeResponses.Json(200, FakeResponses.Completion("gpt-4o-mini", "second time lucky")));
        await using var host = await StartAsync(upstream);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("second time lucky", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(2, upstream.ChatCalls);
    }

    [Fact]
    public async Task Rate_limit_with_retry_after_waits_that_long_before_retrying()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Error(429, "slow down", "requests", "rate_limit_exceeded", headers: [("Retry-After", "1")]));
        await using var host = await StartAsync(upstream);

        var watch = Stopwatch.StartNew();
        using var response = await host.PostChatAsync(Chat());
        watch.Stop();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, upstream.ChatCalls);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(900), $"Retried after {watch.Elapsed.TotalMilliseconds} ms; Retry-After asked for 1 s.");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"Took {watch.Elapsed}.");
    }

    [Fact]
    public async Task Retry_after_ms_header_is_honoured()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Error(429, "slow down", headers: [("retry-after-ms", "400"), ("Retry-After", "30")]));
        await using var host = await StartAsync(upstream);

        var watch = Stopwatch.StartNew();
        using var response = await host.PostChatAsync(Chat());
        watch.Stop();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, upstream.ChatCalls);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(350), $"Retried after {watch.Elapsed.TotalMilliseconds} ms; retry-after-ms asked for 400 ms.");
    }

    [Theory]
    [InlineData(400)]
    [InlineData(401)]
    [InlineData(404)]
    [InlineData(422)]
    public async Task Client_errors_are_not_retried(int status)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Handler = FakeResponses.Error(status, "no");
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 3);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(1, upstream.ChatCalls);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Max_retries_is_honoured(int maxRetries)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Handler = FakeResponses.Error(503, "overloaded");
        await using var host = await StartAsync(upstream, p => p.MaxRetries = maxRetries);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("overloaded", AssertProviderError(await GatewayHost.ReadJsonAsync(response), 503).GetProperty("message").GetString());
        Assert.Equal(maxRetries + 1, upstream.ChatCalls);
    }

    [Fact]
    public async Task Retry_after_above_max_delay_is_not_waited_for_and_the_fallback_answers()
    {
        await using var primary = await FakeOpenAIUpstream.StartAsync();
        await using var other = await FakeOpenAIUpstream.StartAsync();
        primary.Handler = FakeResponses.Error(429, "come back in a minute", headers: [("Retry-After", "60")]);
        await using var host = await StartAsync(
            primary,
            p => p.RetryMaxDelay = TimeSpan.FromSeconds(1),
            o => o.Providers["other"] = Provider(other));

        var watch = Stopwatch.StartNew();
        using var response = await host.PostChatAsync(Chat(extra: "\"fallbacks\":[\"other/model-b\"]"));
        watch.Stop();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("other", (await GatewayHost.ReadJsonAsync(response)).GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(1, primary.ChatCalls);
        Assert.Equal(1, other.ChatCalls);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"Took {watch.Elapsed}: the 60 s Retry-After must not be waited for.");
    }
}
