using Bifrost.Middleware.Providers.Azure;
using Bifrost.Middleware.Providers.OpenAI;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Azure;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>Type <c>azure</c> against the adapter conformance suite, over HTTP to the fake Azure OpenAI resource (v1 API).</summary>
public sealed class AzureOpenAIAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    private FakeAzureOpenAIUpstream _upstream = null!;
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        _upstream = await FakeAzureOpenAIUpstream.StartAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _upstream.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_services.GetRequiredKeyedService<OpenAICompatibleAdapter>(AzureProviderType.AdapterKey));

    protected override ProviderContext CreateContext() =>
        new("azure", new ProviderOptions { Type = "azure", BaseUrl = _upstream.Endpoint }, "gpt-4o", FakeAzureOpenAIUpstream.ApiKey);

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _upstream.Script = script;
        return ValueTask.FromResult(true);
    }
}
