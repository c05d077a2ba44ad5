using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Gateway;

/// <summary>Fallbacks and retries with in-process adapters (HTTP upstream errors are covered in Upstream/).</summary>
public sealed class FallbackAndRetryTests
{
    private const string Messages = "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]";

    private static Task<GatewayHost> StartAsync(ScriptedAdapter primary, ScriptedAdapter backup, int maxRetries = 0, TimeSpan? baseDelay = null, Action<IServiceCollection>? services = null) =>
        GatewayHost.StartAsync(
            options =>
            {
                options.Providers["primary"] = new ProviderOptions { MaxRetries = maxRetries, RetryBaseDelay = baseDelay ?? TimeSpan.Zero };
                options.Providers["backup"] = new ProviderOptions { MaxRetries = 0 };
            },
            bifrost => bifrost.AddProvider("primary", _ => primary).AddProvider("backup", _ => backup),
            services);

    private static ScriptedAdapter Failing(Func<int, BifrostException?> failure)
    {
        var adapter = new ScriptedAdapter();
        adapter.OnChat = (context, _, _) => failure(context.Attempt) is { } error ? Task.FromException<ChatCompletionResponse>(error) : Task.FromResult(Replies.Text(context, $"reply from {context.ProviderName}"));
        adapter.OnStream = (context, _, ct) => failure(context.Attempt) is { } error ? Replies.Failing(error) : Replies.Stream(context, ["reply from", " " + context.ProviderName], ct);
        return adapter;
    }

    [Theory]
    [InlineData(503)]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(408)]
    public async Task A_retryable_failure_falls_back_to_the_next_model(int status)
    {
        var primary = Failing(_ => BifrostException.Provider(status, null, "primary_down", "primary is down"));
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("reply from backup", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("backup", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("b", json.GetProperty("extra_fields").GetProperty("model_requested").GetString());
        Assert.Single(primary.Calls);
        var (context, request) = Assert.Single(backup.Calls);
        Assert.Equal("b", request.Model);
        Assert.Equal("b", context.Model);
        Assert.Null(request.Fallbacks);
    }

    [Fact]
    public async Task Fallbacks_are_tried_in_order_until_one_serves()
    {
        var primary = Failing(_ => BifrostException.Provider(503, null, "down", "down"));
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","fallbacks":["primary/a2","local/echo","backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("hello", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(["a", "a2"], primary.Calls.Select(c => c.Request.Model));
        Assert.Empty(backup.Calls);
    }

    [Fact]
    public async Task A_non_retryable_400_does_not_fall_back_and_reaches_the_client()
    {
        var primary = Failing(_ => BifrostException.Provider(400, "invalid_request_error", "context_length_exceeded", "too long", "messages"));
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup, maxRetries: 3);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        var json = await Endpoints.ErrorAssert.BifrostErrorAsync(response, 400, isBifrostError: false);
        Assert.Equal("context_length_exceeded", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("too long", json.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("messages", json.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("primary", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Single(primary.Calls); // no retry either
        Assert.Empty(backup.Calls);
    }

    [Fact]
    public async Task When_every_model_fails_the_last_error_is_returned_naming_the_last_provider()
    {
        var primary = Failing(_ => BifrostException.Provider(503, null, "primary_down", "primary is down"));
        var backup = Failing(_ => BifrostException.Provider(502, null, "backup_down", "backup is down"));
        await using var host = await StartAsync(primary, backup);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        var json = await Endpoints.ErrorAssert.BifrostErrorAsync(response, 502, isBifrostError: false);
        Assert.Equal("backup_down", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("backup", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("chat_completion", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task A_retryable_failure_is_retried_MaxRetries_times_before_falling_back()
    {
        var primary = Failing(_ => BifrostException.Provider(503, null, "down", "down"));
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup, maxRetries: 2);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([0, 1, 2], primary.Calls.Select(c => c.Context.Attempt));
        Assert.Single(backup.Calls);
    }

    [Fact]
    public async Task A_retry_that_succeeds_is_served_by_the_primary()
    {
        var primary = Failing(attempt => attempt < 2 ? BifrostException.Provider(429, null, "rate_limited", "slow down") : null);
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup, maxRetries: 2);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("primary", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(3, primary.Calls.Count);
        Assert.Empty(backup.Calls);
    }

    [Fact]
    public async Task Without_fallbacks_retries_exhausted_return_the_providers_error()
    {
        var primary = Failing(_ => BifrostException.Provider(503, null, "down", "still down"));
        await using var host = await StartAsync(primary, new ScriptedAdapter(), maxRetries: 1);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a",{{Messages}}}""", TestContext.Current.CancellationToken);

        var json = await Endpoints.ErrorAssert.BifrostErrorAsync(response, 503, isBifrostError: false);
        Assert.Equal("still down", json.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(2, primary.Calls.Count);
    }

    [Fact]
    public async Task An_adapter_crash_is_a_500_Bifrost_error_not_an_unhandled_exception()
    {
        var primary = new ScriptedAdapter { OnChat = (_, _, _) => throw new InvalidOperationException("bug in adapter") };
        await using var host = await StartAsync(primary, new ScriptedAdapter());

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a",{{Messages}}}""", TestContext.Current.CancellationToken);

        var json = await Endpoints.ErrorAssert.BifrostErrorAsync(response, 500);
        Assert.Equal("provider_adapter_error", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("bug in adapter", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_that_fails_before_its_first_chunk_falls_back()
    {
        var primary = Failing(_ => BifrostException.Provider(503, null, "down", "down"));
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup, maxRetries: 1);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","stream":true,"fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = Sse.ParseData(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(Sse.Done, events[^1]);
        var chunks = events.SkipLast(1).Select(Sse.Json).ToList();
        Assert.All(chunks, c => Assert.Equal("backup", c.GetProperty("extra_fields").GetProperty("provider").GetString()));
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.GetProperty("extra_fields").GetProperty("chunk_index").GetInt32()));
        Assert.Equal(2, primary.Calls.Count);
    }

    [Fact]
    public async Task A_stream_that_fails_after_its_first_chunk_is_neither_retried_nor_fallen_back()
    {
        var primary = new ScriptedAdapter { OnStream = (context, _, _) => FailAfterOne(context) };
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup, maxRetries: 2);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","stream":true,"fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        var events = Sse.ParseData(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(2, events.Count);
        Assert.Equal("primary", Sse.Json(events[0]).GetProperty("extra_fields").GetProperty("provider").GetString());
        Endpoints.ErrorAssert.Shape(Sse.Json(events[1]), 503, isBifrostError: false);
        Assert.Single(primary.Calls);
        Assert.Empty(backup.Calls);

        static async IAsyncEnumerable<ChatCompletionChunk> FailAfterOne(ProviderContext context)
        {
            await Task.Yield();
            yield return Replies.Chunk(context, new ChatDelta { Role = "assistant", Content = "partial" }, null);
            throw BifrostException.Provider(503, null, "broke", "broke mid-stream");
        }
    }

    [Fact]
    public async Task A_Retry_After_is_waited_for_on_the_injected_TimeProvider()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2025-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var seen = new List<DateTimeOffset>();
        var secondAttempt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var primary = new ScriptedAdapter();
        primary.OnChat = (context, _, _) =>
        {
            lock (seen)
            {
                seen.Add(time.GetUtcNow());
            }

            if (context.Attempt == 0)
            {
                return Task.FromException<ChatCompletionResponse>(BifrostException.Provider(429, null, "rate_limited", "slow down", retryAfter: TimeSpan.FromSeconds(20)));
            }

            secondAttempt.TrySetResult();
            return Task.FromResult(Replies.Text(context, "after the wait"));
        };
        await using var host = await StartAsync(primary, new ScriptedAdapter(), maxRetries: 1, baseDelay: TimeSpan.FromSeconds(1), services: s => s.AddSingleton<TimeProvider>(time));

        var call = host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a",{{Messages}}}""", TestContext.Current.CancellationToken);

        // Drive the fake clock until the retry happens (the test never waits on the real clock for the 20 s).
        while (!secondAttempt.Task.IsCompleted)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.WhenAny(secondAttempt.Task, Task.Delay(10, TestContext.Current.CancellationToken));
        }

        using var response = await call;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, seen.Count);
        Assert.True(seen[1] - seen[0] >= TimeSpan.FromSeconds(20), $"retried after {seen[1] - seen[0]} of fake time, Retry-After was 20 s");
    }

    [Fact]
    public async Task A_Retry_After_above_RetryMaxDelay_skips_the_retries_and_falls_back_at_once()
    {
        var primary = Failing(_ => BifrostException.Provider(429, null, "rate_limited", "slow down", retryAfter: TimeSpan.FromHours(1)));
        var backup = new ScriptedAdapter();
        await using var host = await StartAsync(primary, backup, maxRetries: 5);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"primary/a","fallbacks":["backup/b"],{{Messages}}}""", TestContext.Current.CancellationToken);

        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("backup", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Single(primary.Calls);
    }
}
