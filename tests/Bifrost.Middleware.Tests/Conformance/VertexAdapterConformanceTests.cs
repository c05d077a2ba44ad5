using Bifrost.Middleware.Providers.Vertex;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Vertex;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>The Vertex AI adapter with a Gemini model against the adapter conformance suite, over HTTP to the fake Vertex upstream.</summary>
public sealed class VertexGeminiAdapterConformanceTests : VertexAdapterConformanceTests
{
    protected override string Model => "gemini-2.5-flash";
}

/// <summary>The Vertex AI adapter with a Claude model (rawPredict / streamRawPredict) against the adapter conformance suite.</summary>
public sealed class VertexClaudeAdapterConformanceTests : VertexAdapterConformanceTests
{
    protected override string Model => "claude-sonnet-4-5@20250929";
}

/// <summary>The shared setup: a fake Vertex upstream and the adapter from a gateway's services.</summary>
public abstract class VertexAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    private FakeVertexUpstream _upstream = null!;
    private ServiceProvider _services = null!;

    protected abstract string Model { get; }

    public override async ValueTask InitializeAsync()
    {
        _upstream = await FakeVertexUpstream.StartAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _upstream.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_services.GetRequiredService<VertexAdapter>());

    protected override ProviderContext CreateContext() =>
        new("vertex", new ProviderOptions { Type = "vertex", BaseUrl = _upstream.BaseUrl, ProjectId = "my-project", Region = "us-east5" }, Model, FakeVertexUpstream.Token);

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _upstream.Script = script;
        return ValueTask.FromResult(true);
    }
}
