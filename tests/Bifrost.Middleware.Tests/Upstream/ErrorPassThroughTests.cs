using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Upstream errors reach the client with their status and their OpenAI error fields, in the Bifrost error shape.</summary>
public sealed class ErrorPassThroughTests
{
    [Theory]
    [InlineData(400, "invalid_request_error", "unsupported_parameter", "temperature", "Unsupported value: 'temperature'.")]
    [InlineData(401, "invalid_request_error", "invalid_api_key", null, "Incorrect API key provided: sk-test.")]
    [InlineData(404, "invalid_request_error", "model_not_found", "model", "The model `gpt-9` does not exist.")]
    [InlineData(429, "requests", "rate_limit_exceeded", null, "Rate limit reached for gpt-4o-mini.")]
    [InlineData(500, "server_error", null, null, "The server had an error while processing your request.")]
    public async Task Upstream_error_status_and_fields_pass_through(int status, string type, string? code, string? param, string message)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Error(status, message, type, code, param));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 0);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = await GatewayHost.ReadJsonAsync(response);
        var error = AssertProviderError(json, status);
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(code, error.TryGetProperty("code", out var c) ? c.GetString() : null);
        Assert.Equal(param, error.TryGetProperty("param", out var p) ? p.GetString() : null);
        Assert.Equal("openai", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("gpt-4o-mini", json.GetProperty("extra_fields").GetProperty("model_requested").GetString());
        Assert.Equal(1, upstream.ChatCalls);
    }

    [Fact]
    public async Task Non_json_error_body_becomes_the_message()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Body(502, "text/html", "<html>Bad Gateway from nginx</html>\n"));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 0);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var error = AssertProviderError(await GatewayHost.ReadJsonAsync(response), 502);
        Assert.Equal("<html>Bad Gateway from nginx</html>", error.GetProperty("message").GetString());
        Assert.Equal("api_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Empty_error_body_gets_a_message_naming_the_status()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Body(403, "text/plain", ""));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 0);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var error = AssertProviderError(await GatewayHost.ReadJsonAsync(response), 403);
        Assert.Contains("403", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("permission_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Rate_limit_keeps_the_upstream_retry_after_for_the_client()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Error(429, "slow down", "requests", "rate_limit_exceeded", headers: [("Retry-After", "7")]));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 0);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
        Assert.Equal("slow down", AssertProviderError(await GatewayHost.ReadJsonAsync(response), 429).GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("""{"error":"Invalid API key"}""", "Invalid API key", null)]
    [InlineData("""{"message":"quota exhausted"}""", "quota exhausted", null)]
    [InlineData("""{"detail":"Not authenticated"}""", "Not authenticated", null)]
    [InlineData("""{"error":{"message":"too many","code":1302}}""", "too many", "1302")]
    public async Task Common_non_openai_error_bodies_keep_their_message(string body, string message, string? code)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Json(401, body));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 0);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = AssertProviderError(await GatewayHost.ReadJsonAsync(response), 401);
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.Equal("authentication_error", error.GetProperty("type").GetString());
        Assert.Equal(code, error.TryGetProperty("code", out var c) ? c.GetString() : null);
    }

    [Fact]
    public async Task Success_status_with_a_body_that_is_not_a_completion_is_a_502()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Body(200, "text/html", "<html>captive portal</html>"));
        await using var host = await StartAsync(upstream, p => p.MaxRetries = 0);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("invalid_provider_response", AssertProviderError(await GatewayHost.ReadJsonAsync(response), 502).GetProperty("code").GetString());
    }
}
