using System.Net;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>Anthropic errors pass through with their status, type and message; 429/5xx/529 are retried, others not.</summary>
public sealed class AnthropicErrorTests : AnthropicTestBase
{
    private static JsonObject Body() => new() { ["model"] = "anthropic/claude-sonnet-4-5", ["messages"] = Messages(User("hi")) };

    [Theory]
    [InlineData(400, "invalid_request_error", "max_tokens: must be at most 8192")]
    [InlineData(401, "authentication_error", "invalid x-api-key")]
    [InlineData(403, "permission_error", "Your API key does not have permission")]
    public async Task Client_errors_pass_through_once_with_status_type_and_message(int status, string type, string message)
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(status, type, message));
        await using var host = await StartHostAsync(p => p.MaxRetries = 2);

        var json = await ChatAsync(host, Body(), (HttpStatusCode)status);

        var error = json.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Single(Upstream.MessageRequests);
    }

    [Fact]
    public async Task Rate_limit_carries_retry_after_and_passes_through_when_retries_are_exhausted()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", TimeSpan.FromSeconds(12)));
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(), Request(), Ct));
        Assert.Equal(429, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(12), error.RetryAfter);
        Assert.Equal("rate_limit_error", error.Error.Error.Type);

        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(429, "rate_limit_error", "slow down", TimeSpan.FromSeconds(12)));
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", Body().ToJsonString(), Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
    }

    [Fact]
    public async Task Rate_limit_is_retried_after_the_providers_retry_after()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(429, "rate_limit_error", "slow down", TimeSpan.FromSeconds(1)));
        await using var host = await StartHostAsync(p => p.MaxRetries = 1);
        var watch = System.Diagnostics.Stopwatch.StartNew();

        var json = await ChatAsync(host, Body());

        Assert.Equal("echo: hi", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(2, Upstream.MessageRequests.Count());
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"The retry came after {watch.Elapsed}, before the provider's Retry-After.");
    }

    [Fact]
    public async Task Overloaded_529_is_retryable_and_retried()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(529, "overloaded_error", "Overloaded"));
        await using var host = await StartHostAsync(p => p.MaxRetries = 1);

        var json = await ChatAsync(host, Body());

        Assert.Equal("echo: hi", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(2, Upstream.MessageRequests.Count());

        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(529, "overloaded_error", "Overloaded"));
        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(), Request(), Ct));
        Assert.Equal(529, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal("overloaded_error", error.Error.Error.Type);
    }

    [Fact]
    public async Task Server_error_is_retried_then_passed_through()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(500, "api_error", "Internal server error"));
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(500, "api_error", "Internal server error"));
        await using var host = await StartHostAsync(p => p.MaxRetries = 1);

        var json = await ChatAsync(host, Body(), HttpStatusCode.InternalServerError);

        Assert.Equal("api_error", json.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("Internal server error", json.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(2, Upstream.MessageRequests.Count());
    }

    [Fact]
    public async Task Overloaded_primary_falls_back_to_another_provider()
    {
        Upstream.Failures.Enqueue(new FakeAnthropicUpstream.Failure(529, "overloaded_error", "Overloaded"));
        await using var host = await StartHostAsync();
        var body = Body();
        body["fallbacks"] = new JsonArray("local/echo");

        var json = await ChatAsync(host, body);

        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    [Fact]
    public async Task A_non_json_error_body_becomes_the_message()
    {
        Upstream.RawStream = null;
        await using var host = await StartHostAsync(p => p.BaseUrl = Upstream.BaseUrl + "/nowhere");

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(configure: p => p.BaseUrl = Upstream.BaseUrl + "/nowhere"), Request(), Ct));

        Assert.Equal(404, error.StatusCode);
        Assert.False(error.IsRetryable);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Fact]
    public async Task A_slow_provider_times_out_per_attempt_as_a_retryable_504()
    {
        Upstream.Script = new Bifrost.Middleware.Testing.ProviderScript { ResponseDelay = TimeSpan.FromSeconds(20) };
        await using var host = await StartHostAsync(p => p.Timeout = TimeSpan.FromMilliseconds(300));

        var json = await ChatAsync(host, Body(), HttpStatusCode.GatewayTimeout);

        Assert.Equal("provider_timeout", json.GetProperty("error").GetProperty("code").GetString());
    }

    private static ChatCompletionRequest Request() => new() { Model = "claude-sonnet-4-5", Messages = [ChatCompletionMessage.FromText("user", "hi")] };
}
