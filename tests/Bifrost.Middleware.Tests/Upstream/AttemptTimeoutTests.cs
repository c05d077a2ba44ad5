using System.Diagnostics;
using System.Net;
using System.Text;
using Bifrost.Middleware.Providers.OpenAI;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>
/// The per-attempt timeout of HTTP adapters (<see cref="ProviderOptions.Timeout"/>), which a Polly timeout strategy used to
/// run: it is measured on the injected clock, it covers every handler of the adapter's named client (the host's too), each
/// attempt gets a fresh one, and the caller's cancellation is never reported as a timeout. The upstream is a handler, not a
/// server: these tests advance a fake clock instead of waiting.
/// </summary>
public sealed class AttemptTimeoutTests : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Observe = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new();
    private ServiceProvider? _services;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        if (_services is not null)
        {
            await _services.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_timeout_runs_on_the_injected_clock_and_cancels_the_attempt()
    {
        var upstream = new ScriptedUpstream(ScriptedUpstream.Hang);
        var call = Call(upstream, maxRetries: 0, Ct);
        var attempt = await NextAttemptAsync(upstream);
        AdvanceThroughTheTimeout(call, attempt);

        var ex = await Assert.ThrowsAsync<BifrostException>(() => call.WaitAsync(Observe, Ct));
        Assert.Equal(504, ex.StatusCode);
        Assert.Equal("provider_timeout", ex.Error.Error.Code);
        Assert.Equal($"Provider 'openai' did not answer within {Timeout}.", ex.Error.Error.Message);
        Assert.True(ex.IsRetryable);
        Assert.True(attempt.IsCancellationRequested);
    }

    [Fact]
    public async Task Each_attempt_gets_a_fresh_timeout()
    {
        var upstream = new ScriptedUpstream(ScriptedUpstream.Hang);
        var call = Call(upstream, maxRetries: 1, Ct);
        AdvanceThroughTheTimeout(call, await NextAttemptAsync(upstream));
        // The retry (no backoff here) starts a second attempt, timed from its own start.
        var second = await NextAttemptAsync(upstream);
        AdvanceThroughTheTimeout(call, second);

        var ex = await Assert.ThrowsAsync<BifrostException>(() => call.WaitAsync(Observe, Ct));
        Assert.Equal("provider_timeout", ex.Error.Error.Code);
        Assert.True(second.IsCancellationRequested);
        Assert.Equal(2, upstream.Calls);
    }

    [Fact]
    public async Task The_callers_cancellation_cancels_the_attempt_and_is_not_a_timeout()
    {
        var upstream = new ScriptedUpstream(ScriptedUpstream.Hang);
        using var caller = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var call = Call(upstream, maxRetries: 0, caller.Token);
        var attempt = await NextAttemptAsync(upstream);
        await caller.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Observe, Ct));
        Assert.True(attempt.IsCancellationRequested);
    }

    [Fact]
    public async Task A_handler_the_host_adds_to_the_named_client_is_inside_the_timeout()
    {
        var upstream = new ScriptedUpstream(ScriptedUpstream.Answer);
        var hostHandler = new StallingHandler();
        var call = Call(upstream, maxRetries: 0, Ct, client => client.AddHttpMessageHandler(() => hostHandler));
        await hostHandler.Entered.Task.WaitAsync(Observe, Ct);
        _time.Advance(Timeout);

        var ex = await Assert.ThrowsAsync<BifrostException>(() => call.WaitAsync(Observe, Ct));
        Assert.Equal("provider_timeout", ex.Error.Error.Code);
        Assert.Equal(0, upstream.Calls);
    }

    [Fact]
    public async Task The_timeout_bounds_the_headers_not_the_body_of_an_answer_already_started()
    {
        var body = new TaskCompletionSource();
        var upstream = new ScriptedUpstream((_, _) => Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK)
        {
            Content = new StreamContent(new GatedStream(body.Task, Encoding.UTF8.GetBytes(ScriptedUpstream.AnswerJson))) { Headers = { ContentType = new("application/json") } },
        }));
        var call = Call(upstream, maxRetries: 0, Ct);
        await NextAttemptAsync(upstream);
        _time.Advance(Timeout * 2);
        body.SetResult();

        Assert.Equal("Hi!", (await call.WaitAsync(Observe, Ct)).Choices[0].Message!.Content);
    }

    /// <summary>The token of the upstream's next attempt, once it has started.</summary>
    private static async Task<CancellationToken> NextAttemptAsync(ScriptedUpstream upstream) =>
        await upstream.Attempts.Reader.ReadAsync(Ct).AsTask().WaitAsync(Observe, Ct);

    /// <summary>Advances the clock to 1 s before the attempt's timeout (it still runs), then to the timeout (it is cancelled).</summary>
    private void AdvanceThroughTheTimeout(Task call, CancellationToken attempt)
    {
        _time.Advance(Timeout - TimeSpan.FromSeconds(1));
        Assert.False(attempt.IsCancellationRequested);
        Assert.False(call.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(attempt.IsCancellationRequested);
    }

    /// <summary>A chat completion through a gateway on the fake clock whose provider's upstream is <paramref name="upstream"/>.</summary>
    private Task<ChatCompletionResponse> Call(ScriptedUpstream upstream, int maxRetries, CancellationToken cancellationToken, Action<IHttpClientBuilder>? configure = null)
    {
        _services = Gateway(_time, upstream, maxRetries, configure);
        return _services.GetRequiredService<IBifrostClient>().ChatCompletionAsync(Request(), cancellationToken);
    }

    private static ChatCompletionRequest Request() =>
        new() { Model = "openai/gpt-4o-mini", Messages = [ChatCompletionMessage.FromText("user", "hello")] };

    private static ServiceProvider Gateway(FakeTimeProvider time, ScriptedUpstream upstream, int maxRetries, Action<IHttpClientBuilder>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddBifrost(options => options.Providers["openai"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = "http://upstream.test/v1",
            Keys = [new ProviderKeyOptions { Value = "sk-test" }],
            MaxRetries = maxRetries,
            RetryBaseDelay = TimeSpan.Zero,
            RetryMaxDelay = TimeSpan.Zero,
            Timeout = Timeout,
        });
        var client = services.AddHttpClient(OpenAICompatibleAdapter.HttpClientName).ConfigurePrimaryHttpMessageHandler(() => upstream);
        configure?.Invoke(client);
        return services.BuildServiceProvider();
    }

    /// <summary>The upstream: answers each attempt with the next script (the last one repeats); publishes each attempt's token.</summary>
    private sealed class ScriptedUpstream(params Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>>[] scripts) : HttpMessageHandler
    {
        public const string AnswerJson =
            """{"id":"chatcmpl-x","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}""";

        private int _calls;

        public System.Threading.Channels.Channel<CancellationToken> Attempts { get; } = System.Threading.Channels.Channel.CreateUnbounded<CancellationToken>();

        public int Calls => Volatile.Read(ref _calls);

        public static async Task<HttpResponseMessage> Hang(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);
            throw new UnreachableException();
        }

        public static Task<HttpResponseMessage> Answer(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(AnswerJson, Encoding.UTF8, "application/json") });

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var call = Interlocked.Increment(ref _calls);
            Attempts.Writer.TryWrite(cancellationToken);
            return scripts[Math.Min(call, scripts.Length) - 1](request, cancellationToken);
        }
    }

    /// <summary>A handler a host adds to the named client that never passes the request on, until cancelled.</summary>
    private sealed class StallingHandler : DelegatingHandler
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Entered.TrySetResult();
            await Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);
            throw new UnreachableException();
        }
    }

    /// <summary>A body that is released only when <paramref name="gate"/> completes.</summary>
    private sealed class GatedStream(Task gate, byte[] content) : MemoryStream(content)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await gate.WaitAsync(cancellationToken);
            return await base.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
