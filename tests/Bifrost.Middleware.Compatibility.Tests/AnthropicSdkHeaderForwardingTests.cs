using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Models.Messages;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>
/// The official Anthropic .NET SDK, its HttpClient sending <c>anthropic-beta</c> on every request (as Claude Code does), through
/// <c>MapBifrostAnthropic</c> to an <c>anthropic</c> provider: the fake Anthropic API (Kestrel on 127.0.0.1, answering
/// https://docs.anthropic.com/en/api/messages's message shape) sees the SDK's <c>anthropic-version</c> and betas, and the
/// gateway's key instead of the SDK's.
/// </summary>
public sealed class AnthropicSdkHeaderForwardingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_SDKs_beta_and_version_headers_reach_Anthropic_with_the_gateways_key()
    {
        var seen = new ConcurrentQueue<(string? Beta, string? Version, string? Key, JsonObject Body)>();
        var upstreamBuilder = WebApplication.CreateBuilder();
        upstreamBuilder.WebHost.UseUrls("http://127.0.0.1:0");
        upstreamBuilder.Logging.ClearProviders();
        await using var upstream = upstreamBuilder.Build();
        upstream.MapPost("/v1/messages", async (HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted))!.AsObject();
            seen.Enqueue((context.Request.Headers["anthropic-beta"].ToString(), context.Request.Headers["anthropic-version"].ToString(), context.Request.Headers["x-api-key"].ToString(), body));
            return Results.Json(new JsonObject
            {
                ["id"] = "msg_01SDK",
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = "claude-sonnet-4-5",
                ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "Cached." }),
                ["stop_reason"] = "end_turn",
                ["stop_sequence"] = null,
                ["usage"] = new JsonObject { ["input_tokens"] = 5, ["output_tokens"] = 2, ["cache_creation_input_tokens"] = 0, ["cache_read_input_tokens"] = 0 },
            });
        });
        await upstream.StartAsync(Ct);

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.Providers["anthropic"] = new ProviderOptions
        {
            Type = "anthropic",
            BaseUrl = upstream.Urls.First(),
            Keys = [new ProviderKeyOptions { Value = "sk-ant-gateway" }],
            MaxRetries = 0,
        });
        await using var app = builder.Build();
        string? sdkVersion = null;
        app.Use((context, next) =>
        {
            sdkVersion = context.Request.Headers["anthropic-version"].ToString();
            return next(context);
        });
        app.MapBifrostAnthropic("/anthropic");
        await app.StartAsync(Ct);
        var server = app.GetTestServer();
        using var http = server.CreateClient();
        http.DefaultRequestHeaders.Add("anthropic-beta", "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14");
        var client = new AnthropicClient { HttpClient = http, BaseUrl = new Uri(server.BaseAddress, "/anthropic").ToString(), ApiKey = "sk-ant-callers-own", MaxRetries = 0 };

        var message = await client.Messages.Create(new MessageCreateParams { MaxTokens = 32, Messages = [new UserMessageParam("Hello")], Model = "anthropic/claude-sonnet-4-5" }, Ct);

        message.Validate();
        Assert.Equal("msg_01SDK", message.ID);
        var (beta, version, key, body) = Assert.Single(seen);
        Assert.Equal("prompt-caching-2024-07-31,interleaved-thinking-2025-05-14", beta);
        Assert.False(string.IsNullOrEmpty(sdkVersion));
        Assert.Equal(sdkVersion, version); // the SDK's own anthropic-version (newer than the adapter's 2023-06-01), forwarded
        Assert.Equal("sk-ant-gateway", key);
        Assert.Equal("claude-sonnet-4-5", body["model"]!.GetValue<string>());
        await app.StopAsync(Ct);
        await upstream.StopAsync(Ct);
    }
}
