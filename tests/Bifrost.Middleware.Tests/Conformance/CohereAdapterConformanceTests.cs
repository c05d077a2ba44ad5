using Bifrost.Middleware.Providers.Cohere;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Cohere;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>The Cohere adapter against the adapter conformance suite, over HTTP to the fake Cohere upstream.</summary>
public sealed class CohereAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    private FakeCohereUpstream _upstream = null!;
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        _upstream = await FakeCohereUpstream.StartAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _upstream.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_services.GetRequiredService<CohereAdapter>());

    protected override ProviderContext CreateContext() =>
        new("cohere", new ProviderOptions { Type = "cohere", BaseUrl = _upstream.BaseUrl }, "command-a-03-2025", "co-test-key");

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _upstream.Script = script;
        return ValueTask.FromResult(true);
    }
}
