using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Vertex;
using Bifrost.Middleware.Serialization;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>A fake Vertex upstream per test, the adapter from a gateway's services, and a gateway host whose <c>vertex</c> provider points at it.</summary>
public abstract class VertexTestBase : IAsyncLifetime
{
    public const string Project = "my-project";

    private ServiceProvider _services = null!;

    protected FakeVertexUpstream Upstream { get; private set; } = null!;

    private protected VertexAdapter Adapter { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync()
    {
        Upstream = await FakeVertexUpstream.StartAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
        Adapter = _services.GetRequiredService<VertexAdapter>();
    }

    public virtual async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await Upstream.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected Task<GatewayHost> StartHostAsync(Action<ProviderOptions>? provider = null, Action<IServiceCollection>? services = null, Action<IBifrostBuilder>? bifrost = null) => GatewayHost.StartAsync(
        o =>
        {
            var vertex = new ProviderOptions
            {
                Type = "vertex",
                BaseUrl = Upstream.BaseUrl,
                ProjectId = Project,
                Region = "us-east5",
                Keys = [new ProviderKeyOptions { Value = FakeVertexUpstream.Token }],
                MaxRetries = 0,
                RetryBaseDelay = TimeSpan.Zero,
            };
            provider?.Invoke(vertex);
            o.Providers["vertex"] = vertex;
        },
        bifrost,
        services);

    protected static async Task<(HttpStatusCode Status, string Body)> PostAsync(GatewayHost host, string path, JsonObject body)
    {
        using var response = await host.PostJsonAsync(path, body.ToJsonString(), Ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    protected ProviderContext Context(string model = "gemini-2.5-flash", Action<ProviderOptions>? configure = null, string? key = FakeVertexUpstream.Token)
    {
        var options = new ProviderOptions { Type = "vertex", BaseUrl = Upstream.BaseUrl, ProjectId = Project, Region = "us-east5" };
        configure?.Invoke(options);
        return new ProviderContext("vertex", options, model, key);
    }

    /// <summary>A chat request from OpenAI JSON (as a client sends it).</summary>
    protected static ChatCompletionRequest Chat(string json) =>
        JsonSerializer.Deserialize(json, BifrostJson.Context.ChatCompletionRequest)!;

    protected static ChatCompletionRequest Hello(string model) =>
        Chat($$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hi Vertex"}]}""");

    protected static async Task<List<ChatCompletionChunk>> CollectAsync(IAsyncEnumerable<ChatCompletionChunk> stream)
    {
        var chunks = new List<ChatCompletionChunk>();
        await foreach (var chunk in stream)
        {
            chunks.Add(chunk);
        }

        return chunks;
    }

    protected static string Content(IEnumerable<ChatCompletionChunk> chunks) =>
        string.Concat(chunks.SelectMany(static c => c.Choices).Select(static c => c.Delta?.Content));
}
