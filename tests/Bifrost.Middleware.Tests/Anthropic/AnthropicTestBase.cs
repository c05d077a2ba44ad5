using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>A fake Anthropic upstream per test, and a gateway host whose <c>anthropic</c> provider points at it.</summary>
public abstract class AnthropicTestBase : IAsyncLifetime
{
    protected FakeAnthropicUpstream Upstream { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync() => Upstream = await FakeAnthropicUpstream.StartAsync();

    public virtual async ValueTask DisposeAsync()
    {
        await Upstream.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected Task<GatewayHost> StartHostAsync(Action<ProviderOptions>? provider = null, Action<BifrostOptions>? options = null) => GatewayHost.StartAsync(o =>
    {
        var anthropic = new ProviderOptions
        {
            Type = "anthropic",
            BaseUrl = Upstream.BaseUrl,
            Keys = [new ProviderKeyOptions { Value = "sk-ant-test" }],
            MaxRetries = 0,
            RetryBaseDelay = TimeSpan.Zero,
        };
        provider?.Invoke(anthropic);
        o.Providers["anthropic"] = anthropic;
        options?.Invoke(o);
    });

    protected static async Task<JsonElement> ChatAsync(GatewayHost host, JsonObject body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(expected == response.StatusCode, $"Expected {expected}, got {response.StatusCode}: {json}");
        return json;
    }

    private protected static AnthropicAdapter Adapter(GatewayHost host) => host.Services.GetRequiredService<AnthropicAdapter>();

    protected ProviderContext Context(string model = "claude-sonnet-4-5", Action<ProviderOptions>? configure = null)
    {
        var options = new ProviderOptions { Type = "anthropic", BaseUrl = Upstream.BaseUrl };
        configure?.Invoke(options);
        return new ProviderContext("anthropic", options, model, "sk-ant-test");
    }

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
