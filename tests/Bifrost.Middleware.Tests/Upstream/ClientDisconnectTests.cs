using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>A client that goes away cancels the upstream call (observed by the upstream as RequestAborted).</summary>
public sealed class ClientDisconnectTests
{
    // Counted from the cancellation; the provider's timeout is far longer, so only the disconnect can abort the upstream call.
    private static readonly TimeSpan Observe = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Cancelling_a_streaming_request_aborts_the_upstream_request()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.SseThenHang(FakeResponses.Chunk("gpt-4o-mini", role: "assistant", content: "thinking...")));
        await using var host = await StartAsync(upstream, p => p.Timeout = TimeSpan.FromMinutes(5));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var response = await host.SendStreamingAsync(Chat(stream: true), cts.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        var first = await ReadEventAsync(reader, cts.Token);
        Assert.Equal("thinking...", Parse(first!).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        var upstreamRequest = Assert.Single(upstream.Requests);
        Assert.False(upstreamRequest.Aborted.IsCompleted);

        await cts.CancelAsync();
        var aborted = upstreamRequest.Aborted.WaitAsync(Observe, Ct);
        response.Dispose();

        await aborted;
        Assert.Equal(1, upstream.ChatCalls);
    }

    [Fact]
    public async Task Cancelling_a_non_streaming_request_aborts_the_upstream_request()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Hang());
        await using var host = await StartAsync(upstream, p => p.Timeout = TimeSpan.FromMinutes(5));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var call = host.Client.PostAsync(ChatPath, new StringContent(Chat(), System.Text.Encoding.UTF8, "application/json"), cts.Token);
        var upstreamRequest = await upstream.WaitForRequestAsync();
        Assert.False(upstreamRequest.Aborted.IsCompleted);

        await cts.CancelAsync();
        await upstreamRequest.Aborted.WaitAsync(Observe, Ct);

        // TestHost completes the cancelled call once the gateway's handler has ended.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Observe, Ct));
        Assert.Equal(1, upstream.ChatCalls);
    }

    [Fact]
    public async Task Cancelling_a_streaming_request_before_the_first_chunk_aborts_the_upstream_request()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Hang());
        await using var host = await StartAsync(upstream, p => p.Timeout = TimeSpan.FromMinutes(5));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var call = host.SendStreamingAsync(Chat(stream: true), cts.Token);
        var upstreamRequest = await upstream.WaitForRequestAsync();
        Assert.False(upstreamRequest.Aborted.IsCompleted);

        await cts.CancelAsync();
        await upstreamRequest.Aborted.WaitAsync(Observe, Ct);
        Assert.Equal(1, upstream.ChatCalls);

        // What the cancelled client sees depends on TestHost (nothing was written); only let the call finish.
        try
        {
            (await call.WaitAsync(Observe, Ct)).Dispose();
        }
        catch (OperationCanceledException)
        {
        }
    }
}
