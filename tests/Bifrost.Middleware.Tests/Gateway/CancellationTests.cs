using System.Net;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gateway;

/// <summary>A client that goes away cancels the provider call.</summary>
public sealed class CancellationTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_client_disconnect_during_a_local_stream_cancels_the_adapter()
    {
        // The real local adapter, wrapped under the name "local" to observe what happens to its stream.
        RecordingWrapper? wrapper = null;
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddProvider("local", sp => wrapper = new RecordingWrapper(sp.GetRequiredService<LocalProviderAdapter>())));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
        {
            Content = new StringContent(
                """{"model":"local/echo","stream":true,"metadata":{"local_chunk_delay_ms":"1000"},"messages":[{"role":"user","content":"one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"}]}""",
                System.Text.Encoding.UTF8,
                "application/json"),
        };

        var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stream = await response.Content.ReadAsStreamAsync(cts.Token);
        using var reader = new StreamReader(stream);
        var first = await reader.ReadLineAsync(cts.Token);
        Assert.StartsWith("data: {", first, StringComparison.Ordinal);

        // Go away mid-stream.
        await cts.CancelAsync();
        response.Dispose();

        var outcome = await wrapper!.Ended.Task.WaitAsync(Bound, TestContext.Current.CancellationToken);
        Assert.True(outcome.TokenCancelled, "the adapter's token was cancelled");
        Assert.True(outcome.Exception is null or OperationCanceledException, $"ended by {outcome.Exception}");
        Assert.True(outcome.Chunks < 22, $"the stream stopped early ({outcome.Chunks} chunks)");
    }

    [Fact]
    public async Task A_client_disconnect_during_a_non_streamed_call_cancels_the_adapter()
    {
        var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var adapter = new ScriptedAdapter
        {
            OnChat = async (_, _, ct) =>
            {
                started.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                }
                catch (OperationCanceledException)
                {
                    cancelled.TrySetResult(ct.IsCancellationRequested);
                    throw;
                }

                throw new InvalidOperationException("unreachable");
            },
        };
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddProvider("slow", _ => adapter));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        var call = host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"slow/m","messages":[{"role":"user","content":"x"}]}""", cts.Token);
        await started.Task.WaitAsync(Bound, TestContext.Current.CancellationToken);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound, TestContext.Current.CancellationToken));
        Assert.True(await cancelled.Task.WaitAsync(Bound, TestContext.Current.CancellationToken));
        Assert.Single(adapter.Calls); // a cancelled call is not retried
    }

    /// <summary>Passes a stream through and records how it ended.</summary>
    private sealed class RecordingWrapper(IProviderAdapter inner) : IProviderAdapter
    {
        public TaskCompletionSource<(bool TokenCancelled, Exception? Exception, int Chunks)> Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
            inner.ChatCompletionAsync(context, request, cancellationToken);

        public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var chunks = 0;
            Exception? failure = null;
            await using var enumerator = inner.StreamChatCompletionAsync(context, request, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                while (true)
                {
                    try
                    {
                        if (!await enumerator.MoveNextAsync())
                        {
                            break;
                        }
                    }
                    catch (Exception ex)
                    {
                        failure = ex;
                        throw;
                    }

                    chunks++;
                    yield return enumerator.Current;
                }
            }
            finally
            {
                Ended.TrySetResult((cancellationToken.IsCancellationRequested, failure, chunks));
            }
        }
    }
}
