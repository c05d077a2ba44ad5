using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Bedrock;
using Bifrost.Middleware.Providers.Http;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>
/// Bedrock's errors (<c>{"message"}</c>, the type in <c>x-amzn-ErrorType</c>,
/// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors) pass through
/// with their status and type as the code; the key never leaks.
/// </summary>
public sealed class BedrockErrorTests : BedrockTestBase
{
    private static JsonObject Body() => new() { ["model"] = "bedrock/" + Model, ["messages"] = Messages(User("hi")) };

    [Theory]
    [InlineData(400, "ValidationException", "invalid_request_error", "The model returned the following errors: messages: at least one message is required")]
    [InlineData(403, "AccessDeniedException", "permission_error", "You don't have access to the model with the specified model ID.")]
    [InlineData(404, "ResourceNotFoundException", "not_found_error", "Could not resolve the foundation model from the provided model identifier.")]
    public async Task Client_errors_pass_through_once_with_status_type_code_and_message(int status, string code, string type, string message)
    {
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(status, message));
        await using var host = await StartHostAsync(p => p.MaxRetries = 2);

        var json = await PostAsync(host, "/openai/v1/chat/completions", Body(), (HttpStatusCode)status);

        var error = json.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Single(Upstream.Requests);
    }

    [Theory]
    [InlineData(429, "ThrottlingException")]
    [InlineData(408, "ModelTimeoutException")]
    [InlineData(424, "ModelErrorException")]
    [InlineData(500, "InternalServerException")]
    [InlineData(503, "ServiceUnavailableException")]
    public async Task Throttling_timeouts_model_and_server_errors_are_retried(int status, string code)
    {
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(status, "try again"));
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ChatCompletionAsync(Context(), Request(), Ct));
        Assert.Equal(status, error.StatusCode);
        Assert.Equal(code, error.Error.Error.Code);
        Assert.True(error.IsRetryable);

        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(status, "try again"));
        await using var retrying = await StartHostAsync(p => p.MaxRetries = 1);
        var json = await PostAsync(retrying, "/openai/v1/chat/completions", Body());
        Assert.Equal("echo: hi", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(3, Upstream.Requests.Count);
    }

    [Fact]
    public void The_type_comes_from_the_body_when_the_header_is_missing_and_a_non_json_body_is_the_message()
    {
        var typed = BedrockAdapter.ParseError(new UpstreamError(400, "Bad Request", """{"__type":"com.amazon.bedrock#ValidationException","Message":"bad input"}""", null), null);
        var html = BedrockAdapter.ParseError(new UpstreamError(502, "Bad Gateway", "<html>bad gateway</html>", null), null);

        Assert.Equal("ValidationException", typed.Error.Error.Code);
        Assert.Equal("bad input", typed.Message);
        Assert.False(typed.IsRetryable);
        Assert.Equal(502, html.StatusCode);
        Assert.Equal("<html>bad gateway</html>", html.Message);
        Assert.True(html.IsRetryable);
    }

    [Fact]
    public async Task The_key_is_sent_only_as_the_bearer_header_and_never_reaches_errors_or_logs()
    {
        var logs = new LogSink();
        await using var host = await GatewayHost.StartAsync(
            o => o.Providers["bedrock"] = new ProviderOptions { Type = "bedrock", BaseUrl = Upstream.BaseUrl, Region = "us-east-1", Keys = [new ProviderKeyOptions { Value = Key }], MaxRetries = 0 },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(403, "The security token included in the request is invalid.", Type: "UnrecognizedClientException"));
        Upstream.RawStream = answer => FakeBedrockUpstream.Events(answer).Take(3); // logs a warning

        using var failed = await host.PostJsonAsync("/openai/v1/chat/completions", Body().ToJsonString(), Ct);
        var failedText = await failed.Content.ReadAsStringAsync(Ct);
        var streamBody = Body();
        streamBody["stream"] = true;
        using var cut = await host.PostJsonAsync("/openai/v1/chat/completions", streamBody.ToJsonString(), Ct);
        var cutText = await cut.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.Forbidden, failed.StatusCode);
        Assert.Contains("UnrecognizedClientException", failedText, StringComparison.Ordinal);
        Assert.Contains("incomplete_stream", cutText, StringComparison.Ordinal);
        Assert.All(Upstream.Requests, r => Assert.Equal("Bearer " + Key, r.Headers["authorization"]));
        Assert.DoesNotContain(Key, failedText, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, cutText, StringComparison.Ordinal);
        Assert.NotEmpty(logs.Messages(1080));
        Assert.All(logs.Entries, e => Assert.DoesNotContain(Key, e.Message + e.Exception, StringComparison.Ordinal));
    }
}
