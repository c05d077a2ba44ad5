using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Hosting;

/// <summary>Provider types by name: built-in and user adapters are found by the <c>Type</c> configuration names.</summary>
public sealed class ProviderTypeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Answers with the name of the provider it was called for.</summary>
    private sealed class NamingAdapter : IProviderAdapter
    {
        public ConcurrentQueue<string> Providers { get; } = new();

        public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
        {
            Providers.Enqueue(context.ProviderName);
            return Task.FromResult(new ChatCompletionResponse
            {
                Id = "chatcmpl-typed",
                Created = 1,
                Model = context.Model,
                Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = $"{context.ProviderName} via {context.Options.Type}" }, FinishReason = "stop" }],
            });
        }

        public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            yield break;
        }
    }

    private static Task<HttpResponseMessage> ChatAsync(GatewayHost host, string model) =>
        host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Ct);

    [Fact]
    public async Task A_user_adapter_registered_as_a_type_serves_every_provider_configured_with_that_Type()
    {
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.Providers["acme-eu"] = new ProviderOptions { Type = "acme" };
                options.Providers["acme-us"] = new ProviderOptions { Type = "ACME" };
            },
            bifrost => bifrost.AddProviderType<NamingAdapter>("acme"));

        using var eu = await ChatAsync(host, "acme-eu/m1");
        using var us = await ChatAsync(host, "acme-us/m1");
        using var local = await ChatAsync(host, "local/echo");

        Assert.Equal(HttpStatusCode.OK, eu.StatusCode);
        Assert.Equal("acme-eu via acme", (await GatewayHost.ReadJsonAsync(eu)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("acme-us via ACME", (await GatewayHost.ReadJsonAsync(us)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("hi", (await GatewayHost.ReadJsonAsync(local)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // One adapter (a singleton) serves both providers of its type.
        Assert.Equal(["acme-eu", "acme-us"], host.Services.GetRequiredService<NamingAdapter>().Providers);
    }

    [Fact]
    public async Task A_provider_configured_without_Type_and_named_like_a_user_type_gets_that_type()
    {
        await using var host = await GatewayHost.StartAsync(
            options => options.Providers["acme"] = new ProviderOptions(),
            bifrost => bifrost.AddProviderType<NamingAdapter>("acme"));

        using var response = await ChatAsync(host, "acme/m1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["acme"], host.Services.GetRequiredService<NamingAdapter>().Providers);
    }

    [Fact]
    public async Task A_user_type_named_like_a_built_in_one_replaces_it()
    {
        await using var host = await GatewayHost.StartAsync(
            options => options.Providers["mine"] = new ProviderOptions { Type = "openai" },
            bifrost => bifrost.AddProviderType<NamingAdapter>("openai"));

        using var response = await ChatAsync(host, "mine/m1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["mine"], host.Services.GetRequiredService<NamingAdapter>().Providers);
    }

    [Fact]
    public async Task A_provider_registered_by_name_keeps_its_adapter_whatever_its_configured_Type()
    {
        await using var host = await GatewayHost.StartAsync(
            options => options.Providers["special"] = new ProviderOptions { Type = "local" },
            bifrost => bifrost.AddProvider<NamingAdapter>("special"));

        using var response = await ChatAsync(host, "special/m1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["special"], host.Services.GetRequiredService<NamingAdapter>().Providers);
    }

    [Fact]
    public async Task An_unknown_Type_stops_the_host_naming_the_setting_and_the_known_types_including_registered_ones()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.Providers["mystery"] = new ProviderOptions { Type = "grpc" })
            .AddProviderType<NamingAdapter>("acme");
        await using var app = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(Ct));

        Assert.Contains("Bifrost:Providers:mystery:Type 'grpc' is unknown. Known types: acme, anthropic, azure, bedrock, cerebras, chatclient, cohere, deepseek, fireworks, gemini, groq, lmstudio, local, mistral, ollama, openai, openai-compatible, openrouter, perplexity, together, vertex, vllm, xai;", ex.Message, StringComparison.Ordinal);
        Assert.Contains("AddProviderType", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_type_validates_its_own_options_only_for_providers_of_that_type()
    {
        // An OpenAI-type provider needs a BaseUrl; a user type does not (the same options pass there).
        await using var host = await GatewayHost.StartAsync(
            options => options.Providers["acme"] = new ProviderOptions { Type = "acme" },
            bifrost => bifrost.AddProviderType<NamingAdapter>("acme"));
        using var response = await ChatAsync(host, "acme/m1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.Providers["acme"] = new ProviderOptions { Type = "openai-compatible" });
        await using var app = builder.Build();
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(Ct));
        Assert.Contains("Bifrost:Providers:acme:BaseUrl is required", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddProviderType_refuses_an_empty_type_name()
    {
        var builder = new ServiceCollection().AddBifrost();

        Assert.Throws<ArgumentException>(() => builder.AddProviderType<NamingAdapter>(" "));
    }
}
