using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>A virtual key's rate limits through HTTP, on a fake clock: requests, tokens and concurrency per key, 429 with Retry-After.</summary>
public sealed class RateLimitTests
{
    private const string KeyA = "sk-bf-limited-a";
    private const string KeyB = "sk-bf-limited-b";
    private const string Chat = "/openai/v1/chat/completions";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Body(bool stream = false) =>
        $$"""{"model":"acme/m1","messages":[{"role":"user","content":"hello"}]{{(stream ? ",\"stream\":true" : "")}}}""";

    private sealed class Setup
    {
        public FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

        public ScriptedAdapter Adapter { get; } = new();

        public Task<GatewayHost> StartAsync(GovernanceRateLimitOptions? limitsA, GovernanceRateLimitOptions? limitsB = null, GovernanceMode mode = GovernanceMode.Required) =>
            GatewayHost.StartAsync(
                options =>
                {
                    options.Governance.Mode = mode;
                    options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, RateLimits = limitsA });
                    options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = KeyB, RateLimits = limitsB });
                },
                b => b.AddProvider("acme", _ => Adapter),
                s => s.AddSingleton<TimeProvider>(Time));
    }

    private static async Task<HttpResponseMessage> PostAsync(GatewayHost host, string key, bool stream = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(Body(stream), Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("x-bf-vk", key);
        return await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
    }

    private static async Task<JsonElement> ExpectLimitedAsync(HttpResponseMessage response, string type, string code, long retryAfterSeconds, string requestType = "chat_completion")
    {
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(429, json.GetProperty("status_code").GetInt32());
        Assert.Equal(type, json.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(code, json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(requestType, json.GetProperty("extra_fields").GetProperty("request_type").GetString());
        Assert.Equal(TimeSpan.FromSeconds(retryAfterSeconds), response.Headers.RetryAfter?.Delta);
        return json;
    }

    [Fact]
    public async Task N_requests_pass_then_429_request_limited_with_retry_after_until_the_window_resets()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(new GovernanceRateLimitOptions { Requests = 2, Period = "1m" });

        for (var i = 0; i < 2; i++)
        {
            using var ok = await PostAsync(host, KeyA);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            setup.Time.Advance(TimeSpan.FromSeconds(10));
        }

        using var refused = await PostAsync(host, KeyA);
        await ExpectLimitedAsync(refused, "request_limited", "request_limit_exceeded", 40);
        Assert.Equal(2, setup.Adapter.Calls.Count); // nothing reached the provider

        setup.Time.Advance(TimeSpan.FromSeconds(39));
        using var stillRefused = await PostAsync(host, KeyA);
        await ExpectLimitedAsync(stillRefused, "request_limited", "request_limit_exceeded", 1);

        setup.Time.Advance(TimeSpan.FromSeconds(1));
        using var again = await PostAsync(host, KeyA);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(3, setup.Adapter.Calls.Count);
    }

    [Fact]
    public async Task Keys_are_limited_independently_and_a_key_without_limits_is_not_limited()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(new GovernanceRateLimitOptions { Requests = 1, Period = "1h" }, new GovernanceRateLimitOptions { Requests = 1, Period = "00:01:00" });

        using var a1 = await PostAsync(host, KeyA);
        Assert.Equal(HttpStatusCode.OK, a1.StatusCode);
        using var b1 = await PostAsync(host, KeyB);
        Assert.Equal(HttpStatusCode.OK, b1.StatusCode);
        using var a2 = await PostAsync(host, KeyA);
        await ExpectLimitedAsync(a2, "request_limited", "request_limit_exceeded", 3600);
        setup.Time.Advance(TimeSpan.FromMinutes(1));
        using var b2 = await PostAsync(host, KeyB);
        Assert.Equal(HttpStatusCode.OK, b2.StatusCode);
        using var a3 = await PostAsync(host, KeyA);
        await ExpectLimitedAsync(a3, "request_limited", "request_limit_exceeded", 3540);
    }

    [Fact]
    public async Task Token_limit_refuses_once_the_settled_usage_reaches_it()
    {
        var setup = new Setup();
        setup.Adapter.OnChat = (context, _, _) =>
        {
            var reply = Replies.Text(context, "ok");
            reply.Usage = new ChatUsage { PromptTokens = 4, CompletionTokens = 6, TotalTokens = 10 };
            return Task.FromResult(reply);
        };
        await using var host = await setup.StartAsync(new GovernanceRateLimitOptions { Tokens = 15, Period = "1h" });

        using var first = await PostAsync(host, KeyA); // 10 of 15
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await PostAsync(host, KeyA); // 10 < 15: allowed, settles to 20
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        setup.Time.Advance(TimeSpan.FromMinutes(30));
        using var third = await PostAsync(host, KeyA);
        var json = await ExpectLimitedAsync(third, "token_limited", "token_limit_exceeded", 1800);
        Assert.Contains("20", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, setup.Adapter.Calls.Count);
        using var other = await PostAsync(host, KeyB);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);

        setup.Time.Advance(TimeSpan.FromMinutes(30));
        using var reset = await PostAsync(host, KeyA);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
    }

    [Fact]
    public async Task The_concurrent_call_over_the_limit_is_refused_and_the_slot_frees_when_a_call_ends()
    {
        var setup = new Setup();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = 0;
        setup.Adapter.OnChat = async (context, _, cancellationToken) =>
        {
            if (Interlocked.Increment(ref started) <= 2)
            {
                await release.Task.WaitAsync(cancellationToken); // only the two calls that hold key a's slots wait
            }

            return Replies.Text(context, "slow");
        };
        await using var host = await setup.StartAsync(new GovernanceRateLimitOptions { Concurrent = 2 });

        var slow1 = PostAsync(host, KeyA);
        var slow2 = PostAsync(host, KeyA);
        while (Volatile.Read(ref started) < 2)
        {
            await Task.Delay(10, Ct);
        }

        using var third = await PostAsync(host, KeyA);
        await ExpectLimitedAsync(third, "rate_limited", "concurrency_limit_exceeded", 1);
        Assert.Equal(2, setup.Adapter.Calls.Count);
        using var otherKey = await PostAsync(host, KeyB);
        Assert.Equal(HttpStatusCode.OK, otherKey.StatusCode);

        release.SetResult();
        using (var r1 = await slow1)
        using (var r2 = await slow2)
        {
            Assert.Equal(HttpStatusCode.OK, r1.StatusCode);
            Assert.Equal(HttpStatusCode.OK, r2.StatusCode);
        }

        using var after = await PostAsync(host, KeyA);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task A_stream_holds_its_concurrent_slot_until_it_ends()
    {
        var setup = new Setup();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        setup.Adapter.OnStream = (context, _, cancellationToken) => Held(context, release.Task, cancellationToken);
        await using var host = await setup.StartAsync(new GovernanceRateLimitOptions { Concurrent = 1 });

        using var stream = await PostAsync(host, KeyA, stream: true);
        Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        using var refused = await PostAsync(host, KeyA, stream: true);
        await ExpectLimitedAsync(refused, "rate_limited", "concurrency_limit_exceeded", 1, "chat_completion_stream");

        release.SetResult();
        var text = await stream.Content.ReadAsStringAsync(Ct);
        Assert.Contains("[DONE]", text, StringComparison.Ordinal);
        using var after = await PostAsync(host, KeyA);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    private static async IAsyncEnumerable<ChatCompletionChunk> Held(ProviderContext context, Task release, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return Replies.Chunk(context, new ChatDelta { Role = "assistant", Content = "first" }, null);
        await release.WaitAsync(cancellationToken);
        yield return Replies.Chunk(context, new ChatDelta(), "stop");
    }

    [Fact]
    public async Task Off_mode_ignores_rate_limits()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(new GovernanceRateLimitOptions { Requests = 1, Period = "1m", Concurrent = 1 }, mode: GovernanceMode.Off);

        for (var i = 0; i < 3; i++)
        {
            using var ok = await PostAsync(host, KeyA);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
    }

    [Theory]
    [InlineData(0L, null, "1m", null, "Requests must be positive")]
    [InlineData(null, -5L, "1h", null, "Tokens must be positive")]
    [InlineData(null, null, null, 0, "Concurrent must be positive")]
    [InlineData(10L, null, "soon", null, "Period 'soon' is not a period")]
    [InlineData(10L, null, null, null, "Period is required")]
    public void Bad_rate_limits_fail_at_start(long? requests, long? tokens, string? period, int? concurrent, string expected)
    {
        var options = new GovernanceOptions();
        options.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, RateLimits = new() { Requests = requests, Tokens = tokens, Period = period, Concurrent = concurrent } });
        var builder = new ValidateOptionsResultBuilder();
        Bifrost.Middleware.Governance.GovernanceValidation.Validate(options, builder);
        var result = builder.Build();
        Assert.True(result.Failed);
        Assert.Single(result.Failures!);
        Assert.Contains(result.Failures!, f => f.Contains("Governance:VirtualKeys:0:RateLimits:", StringComparison.Ordinal) && f.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("1m", 60)]
    [InlineData("1h", 3600)]
    [InlineData("1d", 86400)]
    [InlineData("01:00:00", 3600)]
    public void Periods_parse(string value, int seconds)
    {
        Assert.True(Bifrost.Middleware.Governance.RateLimitPeriod.TryParse(value, out var period));
        Assert.Equal(TimeSpan.FromSeconds(seconds), period);
    }
}
