using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>Cohere's errors (<c>{"message":"..."}</c>, https://docs.cohere.com/errors-reference) pass through with the right status; the key never leaks.</summary>
public sealed class CohereErrorTests : CohereTestBase
{
    private static JsonObject Body() => new() { ["model"] = "cohere/command-a-03-2025", ["messages"] = Messages(User("hi")) };

    [Theory]
    [InlineData(400, "invalid_request_error", "invalid request: message must be at least 1 token long or tool results must be specified.")]
    [InlineData(401, "authentication_error", "invalid api token")]
    [InlineData(404, "not_found_error", "model 'command-x' not found, make sure the correct model ID was used and that you have access to the model.")]
    [InlineData(422, "invalid_request_error", "unprocessable entity")]
    public async Task Client_errors_pass_through_once_with_status_type_and_message(int status, string type, string message)
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(status, message));
        await using var host = await StartHostAsync(p => p.MaxRetries = 2);

        var json = await PostAsync(host, "/openai/v1/chat/completions", Body(), (HttpStatusCode)status);

        var error = json.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Single(Upstream.ChatRequests);
    }

    [Fact]
    public async Task An_invalid_token_498_is_a_401_authentication_error()
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(498, "invalid api token"));
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(), Request(), Ct));

        Assert.Equal(401, error.StatusCode);
        Assert.Equal("authentication_error", error.Error.Error.Type);
        Assert.False(error.IsRetryable);
    }

    [Fact]
    public async Task Too_many_tokens_is_a_400_context_length_exceeded()
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(400, "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292. Try using a shorter prompt or enabling prompt truncating."));
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(), Request(), Ct));

        Assert.Equal(400, error.StatusCode);
        Assert.Equal("context_length_exceeded", error.Error.Error.Code);
        Assert.StartsWith("too many tokens", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rate_limit_carries_retry_after_and_is_retried_after_it()
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(429, "You are past the per minute request limit, please wait and try again later.", TimeSpan.FromSeconds(12)));
        await using var host = await StartHostAsync(p => p.MaxRetries = 1);

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(), Request(), Ct));
        Assert.Equal(429, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(12), error.RetryAfter);
        Assert.Equal("rate_limit_error", error.Error.Error.Type);
        Assert.Equal("You are past the per minute request limit, please wait and try again later.", error.Message);

        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(429, "slow down", TimeSpan.FromSeconds(1)));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var json = await PostAsync(host, "/openai/v1/chat/completions", Body());
        Assert.Equal("echo: hi", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(3, Upstream.ChatRequests.Count());
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"The retry came after {watch.Elapsed}, before the provider's Retry-After.");
    }

    [Theory]
    [InlineData(500)]
    [InlineData(503)]
    public async Task Server_errors_are_retried_then_succeed(int status)
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(status, "internal server error"));
        await using var host = await StartHostAsync(p => p.MaxRetries = 1);

        var json = await PostAsync(host, "/openai/v1/chat/completions", Body());

        Assert.Equal("echo: hi", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(2, Upstream.ChatRequests.Count());
    }

    [Fact]
    public void A_non_json_error_body_is_the_message()
    {
        var answer = Bifrost.Middleware.Providers.Cohere.CohereAdapter.ParseError(new Bifrost.Middleware.Providers.Http.UpstreamError(502, "Bad Gateway", "<html>bad gateway</html>", null));

        Assert.Equal(502, answer.StatusCode);
        Assert.Equal("<html>bad gateway</html>", answer.Message);
        Assert.True(answer.IsRetryable);
    }

    [Fact]
    public async Task The_key_is_sent_only_as_the_bearer_header_and_never_reaches_errors_or_logs()
    {
        var logs = new LogSink();
        await using var host = await GatewayHost.StartAsync(
            o => o.Providers["cohere"] = new ProviderOptions { Type = "cohere", BaseUrl = Upstream.BaseUrl, Keys = [new ProviderKeyOptions { Value = Key }], MaxRetries = 0 },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(401, "invalid api token"));
        Upstream.RawStream = answer => FakeCohereUpstream.Events(answer["id"]!.GetValue<string>(), answer).SkipLast(1); // logs a warning

        using var failed = await host.PostJsonAsync("/openai/v1/chat/completions", Body().ToJsonString(), Ct);
        var failedText = await failed.Content.ReadAsStringAsync(Ct);
        var streamBody = Body();
        streamBody["stream"] = true;
        using var cut = await host.PostJsonAsync("/openai/v1/chat/completions", streamBody.ToJsonString(), Ct);
        var cutText = await cut.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, failed.StatusCode);
        Assert.Contains("incomplete_stream", cutText, StringComparison.Ordinal);
        Assert.All(Upstream.ChatRequests, r => Assert.Equal("Bearer " + Key, r.Headers["authorization"]));
        Assert.DoesNotContain(Key, failedText, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, cutText, StringComparison.Ordinal);
        Assert.NotEmpty(logs.Messages(1020));
        Assert.All(logs.Entries, e => Assert.DoesNotContain(Key, e.Message + e.Exception, StringComparison.Ordinal));
    }

    private static ChatCompletionRequest Request() => new() { Model = "command-a-03-2025", Messages = [ChatCompletionMessage.FromText("user", "hi")] };
}
