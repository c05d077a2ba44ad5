using System.Net;
using System.Net.Sockets;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Per-attempt timeouts and unreachable upstreams.</summary>
public sealed class TimeoutTests
{
    private static readonly TimeSpan Observe = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Upstream_slower_than_the_timeout_gives_504_after_the_retries_and_each_attempt_is_cancelled()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Hang());
        await using var host = await StartAsync(upstream, p =>
        {
            p.Timeout = TimeSpan.FromMilliseconds(300);
            p.MaxRetries = 1;
        });

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        var error = AssertProviderError(await GatewayHost.ReadJsonAsync(response), 504);
        Assert.Equal("provider_timeout", error.GetProperty("code").GetString());
        Assert.Equal(2, upstream.ChatCalls);
        foreach (var request in upstream.Requests)
        {
            await request.Aborted.WaitAsync(Observe, Ct);
        }
    }

    [Fact]
    public async Task Timeout_applies_per_attempt_so_a_fast_retry_succeeds()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Hang());

        // 1 s, not less: the second attempt must answer within it even on a busy machine.
        await using var host = await StartAsync(upstream, p => p.Timeout = TimeSpan.FromSeconds(1));

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, upstream.ChatCalls);
    }

    [Fact]
    public async Task Stream_that_does_not_start_within_the_timeout_gives_a_504_json_error()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Hang());
        await using var host = await StartAsync(upstream, p =>
        {
            p.Timeout = TimeSpan.FromMilliseconds(300);
            p.MaxRetries = 0;
        });

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("provider_timeout", AssertProviderError(await GatewayHost.ReadJsonAsync(response), 504).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Stream_whose_headers_arrive_but_no_chunk_follows_within_the_timeout_gives_a_504_after_the_retries()
    {
        // Headers and a keep-alive comment arrive at once; the first chunk never does.
        await using var upstream = await FakeOpenAIUpstream.StartAsync(async (context, request, token) =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync(": keep-alive\n\n", token);
            await context.Response.Body.FlushAsync(token);
            await Task.Delay(Timeout.Infinite, token);
        });
        await using var host = await StartAsync(upstream, p =>
        {
            p.Timeout = TimeSpan.FromMilliseconds(300);
            p.MaxRetries = 1;
        });

        // Bounded, so that a regression fails in seconds instead of hanging.
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        bound.CancelAfter(TimeSpan.FromSeconds(15));
        using var response = await host.SendStreamingAsync(Chat(stream: true), bound.Token);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("provider_timeout", AssertProviderError(await GatewayHost.ReadJsonAsync(response), 504).GetProperty("code").GetString());
        Assert.Equal(2, upstream.ChatCalls);
        foreach (var request in upstream.Requests)
        {
            await request.Aborted.WaitAsync(Observe, Ct);
        }
    }

    [Fact]
    public async Task Timeout_does_not_cut_a_stream_that_has_started()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        var gap = TimeSpan.FromMilliseconds(500);
        upstream.Enqueue(async (context, request, token) =>
        {
            context.Response.ContentType = "text/event-stream";
            foreach (var chunk in new[] { FakeResponses.Chunk("m", role: "assistant", content: "a"), FakeResponses.Chunk("m", content: "b"), FakeResponses.Chunk("m", content: "c", finishReason: "stop") })
            {
                await context.Response.WriteAsync("data: " + chunk + "\n\n", token);
                await context.Response.Body.FlushAsync(token);
                await Task.Delay(gap, token);
            }

            await context.Response.WriteAsync("data: [DONE]\n\n", token);
        });
        // The first chunk comes at once; the whole stream (1.5 s) lasts longer than the timeout.
        await using var host = await StartAsync(upstream, p =>
        {
            p.Timeout = TimeSpan.FromSeconds(1);
            p.MaxRetries = 0;
        });

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ReadSseDataAsync(response);
        Assert.Equal(4, events.Count);
        Assert.Equal("c", Parse(events[2]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("[DONE]", events[3]);
    }

    [Fact]
    public async Task Connection_refused_gives_502_provider_unreachable()
    {
        var port = FreePort();
        await using var host = await GatewayHost.StartAsync(o => o.Providers["openai"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = $"http://127.0.0.1:{port}/v1",
            Keys = [new ProviderKeyOptions { Value = "sk-test" }],
            MaxRetries = 1,
            RetryBaseDelay = TimeSpan.FromMilliseconds(10),
        });

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        var error = AssertProviderError(json, 502);
        Assert.Equal("provider_unreachable", error.GetProperty("code").GetString());
        Assert.Contains("openai", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("openai", json.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    /// <summary>A loopback port nothing listens on (bound, read, released).</summary>
    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
