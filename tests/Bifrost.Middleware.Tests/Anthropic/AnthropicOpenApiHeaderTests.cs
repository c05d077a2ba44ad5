using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>The OpenAPI document names the headers the Anthropic routes read, as optional header parameters, and says what is done with them.</summary>
public sealed class AnthropicOpenApiHeaderTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_Anthropic_routes_declare_the_headers_they_accept()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddOpenApi();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
        });
        await using var app = builder.Build();
        app.MapBifrostAnthropic();
        app.MapOpenApi();
        await app.StartAsync(Ct);
        using var client = app.GetTestClient();
        using var response = await client.GetAsync("/openapi/v1.json", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var document = JsonDocument.Parse(text);
        var paths = document.RootElement.GetProperty("paths");

        var messages = paths.GetProperty("/anthropic/v1/messages").GetProperty("post");
        Assert.Equal(["anthropic-version", "anthropic-beta", "x-api-key", "x-bf-vk", "x-bf-async", "x-bf-async-id"], Headers(messages));
        Assert.All(messages.GetProperty("parameters").EnumerateArray(), p => Assert.False(p.TryGetProperty("required", out var required) && required.GetBoolean()));
        var description = messages.GetProperty("description").GetString()!;
        Assert.Contains("anthropic-beta (comma-separated) and anthropic-version are forwarded on the native path", description, StringComparison.Ordinal);
        Assert.Contains("Claude on vertex (rawPredict) and bedrock (InvokeModel)", description, StringComparison.Ordinal);

        var count = paths.GetProperty("/anthropic/v1/messages/count_tokens").GetProperty("post");
        Assert.Equal(["anthropic-version", "anthropic-beta", "x-api-key", "x-bf-vk"], Headers(count));
        Assert.Contains("anthropic-beta", count.GetProperty("description").GetString()!, StringComparison.Ordinal);

        static List<string> Headers(JsonElement operation) =>
            [.. operation.GetProperty("parameters").EnumerateArray().Where(p => p.GetProperty("in").GetString() == "header").Select(p => p.GetProperty("name").GetString()!)];
    }
}
