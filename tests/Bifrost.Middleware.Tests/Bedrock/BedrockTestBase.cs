using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Bedrock;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>A fake Bedrock Runtime per test, and a gateway host whose <c>bedrock</c> provider points at it.</summary>
public abstract class BedrockTestBase : IAsyncLifetime
{
    protected const string Key = "ABSKbedrock-api-key-secret-123";
    protected const string Model = "anthropic.claude-3-5-sonnet-20240620-v1:0";

    protected FakeBedrockUpstream Upstream { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync() => Upstream = await FakeBedrockUpstream.StartAsync();

    public virtual async ValueTask DisposeAsync()
    {
        await Upstream.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected Task<GatewayHost> StartHostAsync(Action<ProviderOptions>? provider = null, Action<BifrostOptions>? options = null) => GatewayHost.StartAsync(o =>
    {
        var bedrock = new ProviderOptions
        {
            Type = "bedrock",
            BaseUrl = Upstream.BaseUrl,
            Region = "us-east-1",
            Keys = [new ProviderKeyOptions { Value = Key }],
            MaxRetries = 0,
            RetryBaseDelay = TimeSpan.Zero,
        };
        provider?.Invoke(bedrock);
        o.Providers["bedrock"] = bedrock;
        options?.Invoke(o);
    });

    protected static async Task<JsonElement> PostAsync(GatewayHost host, string path, JsonObject body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await host.PostJsonAsync(path, body.ToJsonString(), Ct);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(expected == response.StatusCode, $"Expected {expected}, got {response.StatusCode}: {json}");
        return json;
    }

    private protected static BedrockAdapter Adapter(GatewayHost host) => host.Services.GetRequiredService<BedrockAdapter>();

    protected ProviderContext Context(string model = Model, Action<ProviderOptions>? configure = null)
    {
        var options = new ProviderOptions { Type = "bedrock", BaseUrl = Upstream.BaseUrl, Region = "us-east-1" };
        configure?.Invoke(options);
        return new ProviderContext("bedrock", options, model, Key);
    }

    /// <summary>The node equals <paramref name="expected"/> as JSON (escapes aside).</summary>
    protected static void AssertJson(string expected, JsonNode? actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"Expected {expected}, got {actual?.ToJsonString()}");

    protected static JsonObject User(string text) => new() { ["role"] = "user", ["content"] = text };

    protected static JsonArray Messages(params JsonNode[] messages) => new(messages);

    protected static ChatCompletionRequest Request(string text = "hello there", bool stream = false) => new()
    {
        Model = Model,
        Messages = [ChatCompletionMessage.FromText("user", text)],
        Stream = stream ? true : null,
        StreamOptions = stream ? new ChatStreamOptions { IncludeUsage = true } : null,
    };

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
