using System.Collections.Concurrent;
using System.Net;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Providers.OpenAI;
using Bifrost.Middleware.Tests.Anthropic;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Each HTTP adapter sends through its own named HttpClient, which a host can configure by that name.</summary>
public sealed class NamedClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Records the path of every request that passes through the client it is added to.</summary>
    private sealed class RecordingHandler(ConcurrentQueue<string> paths) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            paths.Enqueue(request.RequestUri!.AbsolutePath);
            return base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task The_OpenAI_and_Anthropic_adapters_each_use_their_own_named_client()
    {
        Assert.NotEqual(OpenAICompatibleAdapter.HttpClientName, AnthropicAdapter.HttpClientName);
        await using var openai = await FakeOpenAIUpstream.StartAsync();
        await using var anthropic = await FakeAnthropicUpstream.StartAsync();
        var viaOpenAIClient = new ConcurrentQueue<string>();
        var viaAnthropicClient = new ConcurrentQueue<string>();
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.Providers["openai"] = UpstreamGateway.Provider(openai);
                options.Providers["anthropic"] = new ProviderOptions { Type = "anthropic", BaseUrl = anthropic.BaseUrl, Keys = [new ProviderKeyOptions { Value = "sk-ant-test" }] };
            },
            services: services =>
            {
                services.AddHttpClient(OpenAICompatibleAdapter.HttpClientName).AddHttpMessageHandler(() => new RecordingHandler(viaOpenAIClient));
                services.AddHttpClient(AnthropicAdapter.HttpClientName).AddHttpMessageHandler(() => new RecordingHandler(viaAnthropicClient));
            });

        using var toOpenAI = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}""", Ct);
        using var toAnthropic = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}""", Ct);

        Assert.Equal(HttpStatusCode.OK, toOpenAI.StatusCode);
        Assert.Equal(HttpStatusCode.OK, toAnthropic.StatusCode);
        Assert.Equal(["/v1/chat/completions"], viaOpenAIClient);
        Assert.Equal(["/v1/messages"], viaAnthropicClient);
    }
}
