using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Bifrost.Middleware.Tests;

/// <summary>
/// The OpenAI-compatible path against a real upstream (Kestrel on 127.0.0.1): the request that reaches it, the answer,
/// the per-attempt timeout, the caller's cancellation, and model routing.
/// </summary>
public sealed class UpstreamPathTests : IAsyncLifetime
{
    private WebApplication _upstream = null!;
    private string _baseUrl = null!;
    private string? _lastBody;
    private string? _lastAuthorization;
    private string? _lastAccept;

    public async ValueTask InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        _upstream = builder.Build();
        _upstream.MapPost("/v1/chat/completions", async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            _lastBody = await reader.ReadToEndAsync(context.RequestAborted);
            _lastAuthorization = context.Request.Headers.Authorization;
            _lastAccept = context.Request.Headers.Accept;
            if (context.Request.Headers.TryGetValue("x-test-delay-ms", out var delay) || _lastBody.Contains("\"slow\"", StringComparison.Ordinal))
            {
                await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted);
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(
                """{"id":"chatcmpl-x","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}""",
                context.RequestAborted);
        });
        await _upstream.StartAsync();
        var address = _upstream.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _baseUrl = address + "/v1";
    }

    public async ValueTask DisposeAsync()
    {
        await _upstream.StopAsync();
        await _upstream.DisposeAsync();
    }

    private ServiceProvider Gateway(TimeSpan? timeout = null)
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            options.DefaultProvider = "openai";
            options.Providers["openai"] = new ProviderOptions
            {
                Type = "openai",
                BaseUrl = _baseUrl,
                Keys = [new ProviderKeyOptions { Value = "sk-test" }],
                Models = ["gpt-4o-mini", "gpt-4o"],
                MaxRetries = 0,
                Timeout = timeout ?? TimeSpan.FromMinutes(1),
            };
        });
        return services.BuildServiceProvider();
    }

    private static ChatCompletionRequest Request(string model, string text = "hello") =>
        new() { Model = model, Messages = [ChatCompletionMessage.FromText("user", text)], Temperature = 0 };

    [Fact]
    public async Task Completion_reaches_the_upstream_with_the_bare_model_key_and_accept_header()
    {
        await using var services = Gateway();
        var client = services.GetRequiredService<IBifrostClient>();

        var response = await client.ChatCompletionAsync(Request("openai/gpt-4o-mini"), TestContext.Current.CancellationToken);

        Assert.Equal("Hi!", response.Choices[0].Message!.Content);
        Assert.Equal("openai", response.ExtraFields!.Provider);
        Assert.Equal("gpt-4o-mini", response.ExtraFields.ModelRequested);
        Assert.Equal("Bearer sk-test", _lastAuthorization);
        Assert.Equal("application/json", _lastAccept);
        using var sent = JsonDocument.Parse(_lastBody!);
        Assert.Equal("gpt-4o-mini", sent.RootElement.GetProperty("model").GetString());
        Assert.False(sent.RootElement.TryGetProperty("fallbacks", out _));

        // A bare model on the default provider routes the same way, and a second call reuses everything cached.
        response = await client.ChatCompletionAsync(Request("gpt-4o"), TestContext.Current.CancellationToken);
        Assert.Equal("gpt-4o", response.ExtraFields!.ModelRequested);
        using var sent2 = JsonDocument.Parse(_lastBody!);
        Assert.Equal("gpt-4o", sent2.RootElement.GetProperty("model").GetString());
    }

    [Theory]
    [InlineData("openai/gpt-5", "model_not_found", "Model 'gpt-5' is not available on provider 'openai'. Available: gpt-4o-mini, gpt-4o.")]
    [InlineData("openai/", "model_not_found", "Model 'openai/' names no model after the provider.")]
    [InlineData("nope/gpt-4o", "provider_not_found", null)]
    public async Task Unroutable_models_are_400s_with_the_same_messages(string model, string code, string? message)
    {
        await using var services = Gateway();
        var client = services.GetRequiredService<IBifrostClient>();

        var ex = await Assert.ThrowsAsync<BifrostException>(() => client.ChatCompletionAsync(Request(model), TestContext.Current.CancellationToken));

        Assert.Equal(400, ex.StatusCode);
        Assert.Equal(code, ex.Error.Error.Code);
        if (message is not null)
        {
            Assert.Equal(message, ex.Error.Error.Message);
        }
    }

    [Fact]
    public async Task An_attempt_over_the_provider_timeout_is_a_retryable_504()
    {
        await using var services = Gateway(TimeSpan.FromMilliseconds(300));
        var client = services.GetRequiredService<IBifrostClient>();

        var ex = await Assert.ThrowsAsync<BifrostException>(() => client.ChatCompletionAsync(Request("openai/gpt-4o-mini", "slow"), TestContext.Current.CancellationToken));

        Assert.Equal(504, ex.StatusCode);
        Assert.Equal("provider_timeout", ex.Error.Error.Code);
        Assert.True(ex.IsRetryable);
        Assert.Equal("openai", ex.Error.ExtraFields!.Provider);
    }

    [Fact]
    public async Task The_callers_cancellation_is_not_a_timeout()
    {
        await using var services = Gateway();
        var client = services.GetRequiredService<IBifrostClient>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ChatCompletionAsync(Request("openai/gpt-4o-mini", "slow"), cts.Token));
    }

    [Fact]
    public async Task An_unreachable_upstream_is_a_retryable_502()
    {
        var services = new ServiceCollection();
        services.AddBifrost(options => options.Providers["openai"] = new ProviderOptions { Type = "openai", BaseUrl = "http://127.0.0.1:9/v1", MaxRetries = 0 });
        await using var provider = services.BuildServiceProvider();

        var ex = await Assert.ThrowsAsync<BifrostException>(() => provider.GetRequiredService<IBifrostClient>().ChatCompletionAsync(Request("openai/gpt-4o-mini"), TestContext.Current.CancellationToken));

        Assert.Equal(502, ex.StatusCode);
        Assert.Equal("provider_unreachable", ex.Error.Error.Code);
        Assert.True(ex.IsRetryable);
    }
}
