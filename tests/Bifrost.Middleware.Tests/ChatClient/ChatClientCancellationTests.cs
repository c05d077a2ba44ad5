using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>The caller's cancellation and the provider's timeout reach the IChatClient's token.</summary>
public sealed class ChatClientCancellationTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static ServiceProvider Build(FakeChatClient chat, TimeProvider? time = null, Action<ProviderOptions>? provider = null)
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            var providerOptions = new ProviderOptions { MaxRetries = 0 };
            provider?.Invoke(providerOptions);
            options.Providers["mea"] = providerOptions;
        }).AddChatClientProvider("mea", _ => chat);
        if (time is not null)
        {
            services.AddSingleton(time);
        }

        return services.BuildServiceProvider();
    }

    private static ChatCompletionRequest Request() => new() { Model = "mea/m", Messages = [ChatCompletionMessage.FromText("user", "wait")] };

    [Fact]
    public async Task Cancelling_an_in_process_call_cancels_the_chat_clients_token()
    {
        var started = new TaskCompletionSource<CancellationToken>(TaskCreationOptions.RunContinuationsAsynchronously);
        var chat = new FakeChatClient
        {
            OnResponse = async call =>
            {
                started.TrySetResult(call.Token);
                await Task.Delay(Timeout.InfiniteTimeSpan, call.Token);
                throw new InvalidOperationException("unreachable");
            },
        };
        await using var services = Build(chat);
        var client = services.GetRequiredService<IBifrostClient>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        var pending = client.ChatCompletionAsync(Request(), cts.Token);
        var token = await started.Task.WaitAsync(Bound, TestContext.Current.CancellationToken);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        Assert.True(token.IsCancellationRequested);
    }

    [Fact]
    public async Task Cancelling_an_in_process_stream_cancels_the_chat_clients_token()
    {
        var started = new TaskCompletionSource<CancellationToken>(TaskCreationOptions.RunContinuationsAsynchronously);
        var chat = new FakeChatClient { OnStream = call => Endless(started, call.Token) };
        await using var services = Build(chat);
        var client = services.GetRequiredService<IBifrostClient>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        var received = new List<ChatCompletionChunk>();
        var reading = Task.Run(
            async () =>
            {
                await foreach (var chunk in client.ChatCompletionStreamAsync(Request(), cts.Token))
                {
                    received.Add(chunk);
                }
            },
            TestContext.Current.CancellationToken);
        var token = await started.Task.WaitAsync(Bound, TestContext.Current.CancellationToken);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        Assert.True(token.IsCancellationRequested);
        Assert.NotEmpty(received); // it was cancelled mid-stream, after the first chunks
    }

    [Fact]
    public async Task A_client_disconnect_cancels_the_chat_clients_token()
    {
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var chat = new FakeChatClient
        {
            OnResponse = async call =>
            {
                using var registration = call.Token.Register(() => cancelled.TrySetResult());
                started.TrySetResult();
                await Task.Delay(Timeout.InfiniteTimeSpan, call.Token);
                throw new InvalidOperationException("unreachable");
            },
        };
        await using var host = await BridgeHost.StartAsync(chat);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        var pending = host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"mea/m","messages":[{"role":"user","content":"wait"}]}""", cts.Token);
        await started.Task.WaitAsync(Bound, TestContext.Current.CancellationToken);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        await cancelled.Task.WaitAsync(Bound, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task The_provider_timeout_cancels_the_chat_client_and_is_a_504()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20_000));
        var started = new TaskCompletionSource<CancellationToken>(TaskCreationOptions.RunContinuationsAsynchronously);
        var chat = new FakeChatClient
        {
            OnResponse = async call =>
            {
                started.TrySetResult(call.Token);
                await Task.Delay(Timeout.InfiniteTimeSpan, call.Token);
                throw new InvalidOperationException("unreachable");
            },
        };
        await using var services = Build(chat, time, p => p.Timeout = TimeSpan.FromSeconds(30));
        var client = services.GetRequiredService<IBifrostClient>();

        var pending = client.ChatCompletionAsync(Request(), TestContext.Current.CancellationToken);
        var token = await started.Task.WaitAsync(Bound, TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(token.IsCancellationRequested);
        time.Advance(TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsAsync<BifrostException>(() => pending);
        Assert.True(token.IsCancellationRequested);
        Assert.Equal(504, error.StatusCode);
        Assert.True(error.IsRetryable);
    }

    [Fact]
    public async Task The_provider_timeout_bounds_a_stream_until_its_first_update_only()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20_000));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationToken token = default;
        var chat = new FakeChatClient
        {
            OnStream = call =>
            {
                token = call.Token;
                return SlowSecond(release.Task, call.Token);
            },
        };
        await using var services = Build(chat, time, p => p.Timeout = TimeSpan.FromSeconds(10));
        var client = services.GetRequiredService<IBifrostClient>();

        await using var chunks = client.ChatCompletionStreamAsync(Request(), TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        Assert.True(await chunks.MoveNextAsync()); // the role chunk: the first update has arrived
        time.Advance(TimeSpan.FromMinutes(5));
        release.SetResult();
        var text = new List<string?>();
        while (await chunks.MoveNextAsync())
        {
            text.AddRange(chunks.Current.Choices.Select(c => c.Delta.Content));
        }

        Assert.False(token.IsCancellationRequested);
        Assert.Equal("first second", string.Concat(text));
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> Endless(TaskCompletionSource<CancellationToken> started, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return new ChatResponseUpdate(ChatRole.Assistant, "tick");
        started.TrySetResult(cancellationToken);
        while (true)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
            yield return new ChatResponseUpdate(null, " tick");
        }
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> SlowSecond(Task release, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        yield return new ChatResponseUpdate(ChatRole.Assistant, "first");
        await release.WaitAsync(cancellationToken);
        yield return new ChatResponseUpdate(null, " second");
    }
}
