using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Gemini;
using Bifrost.Middleware.Serialization;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>A fake Gemini upstream per test, and a gateway host whose <c>gemini</c> provider points at it.</summary>
public abstract class GeminiTestBase : IAsyncLifetime
{
    protected FakeGeminiUpstream Upstream { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync() => Upstream = await FakeGeminiUpstream.StartAsync();

    public virtual async ValueTask DisposeAsync()
    {
        await Upstream.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected Task<GatewayHost> StartHostAsync(Action<ProviderOptions>? provider = null, Action<IServiceCollection>? services = null) => GatewayHost.StartAsync(
        o =>
        {
            var gemini = new ProviderOptions
            {
                Type = "gemini",
                BaseUrl = Upstream.BaseUrl,
                Keys = [new ProviderKeyOptions { Value = FakeGeminiUpstream.Key }],
                MaxRetries = 0,
                RetryBaseDelay = TimeSpan.Zero,
            };
            provider?.Invoke(gemini);
            o.Providers["gemini"] = gemini;
        },
        services: services);

    protected static async Task<(HttpStatusCode Status, string Body)> PostAsync(GatewayHost host, string path, JsonObject body)
    {
        using var response = await host.PostJsonAsync(path, body.ToJsonString(), Ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    private protected GeminiAdapter Adapter { get; set; } = null!;

    protected ProviderContext Context(string model = "gemini-2.5-flash", Action<ProviderOptions>? configure = null, string key = FakeGeminiUpstream.Key)
    {
        var options = new ProviderOptions { Type = "gemini", BaseUrl = Upstream.BaseUrl };
        configure?.Invoke(options);
        return new ProviderContext("gemini", options, model, key);
    }

    /// <summary>A chat request from OpenAI JSON (as a client sends it).</summary>
    protected static ChatCompletionRequest Chat(string json) =>
        JsonSerializer.Deserialize(json, BifrostJson.Context.ChatCompletionRequest)!;

    protected static JsonObject Sent(UpstreamRequest request) => request.Body!;

    protected static async Task<List<ChatCompletionChunk>> CollectAsync(IAsyncEnumerable<ChatCompletionChunk> stream)
    {
        var chunks = new List<ChatCompletionChunk>();
        await foreach (var chunk in stream)
        {
            chunks.Add(chunk);
        }

        return chunks;
    }

    protected static string Json(object? value) => value switch
    {
        JsonElement element => element.GetRawText(),
        JsonNode node => node.ToJsonString(),
        _ => JsonSerializer.Serialize(value),
    };
}
