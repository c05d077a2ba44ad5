using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Cohere;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>A fake Cohere upstream per test, and a gateway host whose <c>cohere</c> provider points at it.</summary>
public abstract class CohereTestBase : IAsyncLifetime
{
    protected const string Key = "co-secret-key-123";

    protected FakeCohereUpstream Upstream { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync() => Upstream = await FakeCohereUpstream.StartAsync();

    public virtual async ValueTask DisposeAsync()
    {
        await Upstream.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected Task<GatewayHost> StartHostAsync(Action<ProviderOptions>? provider = null, Action<BifrostOptions>? options = null) => GatewayHost.StartAsync(o =>
    {
        var cohere = new ProviderOptions
        {
            Type = "cohere",
            BaseUrl = Upstream.BaseUrl,
            Keys = [new ProviderKeyOptions { Value = Key }],
            MaxRetries = 0,
            RetryBaseDelay = TimeSpan.Zero,
        };
        provider?.Invoke(cohere);
        o.Providers["cohere"] = cohere;
        options?.Invoke(o);
    });

    protected static async Task<JsonElement> PostAsync(GatewayHost host, string path, JsonObject body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await host.PostJsonAsync(path, body.ToJsonString(), Ct);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(expected == response.StatusCode, $"Expected {expected}, got {response.StatusCode}: {json}");
        return json;
    }

    private protected static CohereAdapter Adapter(GatewayHost host) => host.Services.GetRequiredService<CohereAdapter>();

    protected ProviderContext Context(string model = "command-a-03-2025", Action<ProviderOptions>? configure = null)
    {
        var options = new ProviderOptions { Type = "cohere", BaseUrl = Upstream.BaseUrl };
        configure?.Invoke(options);
        return new ProviderContext("cohere", options, model, Key);
    }

    /// <summary>The node equals <paramref name="expected"/> as JSON (escapes aside).</summary>
    protected static void AssertJson(string expected, JsonNode? actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"Expected {expected}, got {actual?.ToJsonString()}");

    protected static JsonObject User(string text) => new() { ["role"] = "user", ["content"] = text };

    protected static JsonArray Messages(params JsonNode[] messages) => new(messages);

    protected static async Task<List<ChatCompletionChunk>> CollectAsync(IAsyncEnumerable<ChatCompletionChunk> stream)
    {
        var chunks = new List<ChatCompletionChunk>();
        await foreach (var chunk in stream)
        {
            chunks.Add(chunk);
        }

        return chunks;
    }
}
