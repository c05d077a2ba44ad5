using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>A gateway host whose provider <c>mea</c> is a fake IChatClient (and, when given, a fake embedding generator).</summary>
internal static class BridgeHost
{
    public const string Provider = "mea";

    public static Task<GatewayHost> StartAsync(FakeChatClient chat, FakeEmbeddingGenerator? embeddings = null, Action<ProviderOptions>? provider = null) =>
        GatewayHost.StartAsync(
            configure: options =>
            {
                var providerOptions = new ProviderOptions { MaxRetries = 0 };
                provider?.Invoke(providerOptions);
                options.Providers[Provider] = providerOptions;
            },
            bifrost: builder =>
            {
                if (embeddings is null)
                {
                    builder.AddChatClientProvider(Provider, _ => chat);
                }
                else
                {
                    builder.AddChatClientProvider(Provider, _ => chat, _ => embeddings);
                }
            });

    public static async Task<(HttpResponseMessage Response, JsonElement Body)> PostAsync(GatewayHost host, string path, string json)
    {
        var response = await host.PostJsonAsync(path, json, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (response, JsonDocument.Parse(text).RootElement.Clone());
    }

    public static async Task<string[]> PostStreamAsync(GatewayHost host, string json)
    {
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", json, TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return [.. Sse.ParseData(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))];
    }
}
