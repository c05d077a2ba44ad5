using Bifrost.Middleware.Providers.Gemini;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Gemini;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>The Gemini adapter against the adapter conformance suite, over HTTP to the fake Gemini upstream.</summary>
public sealed class GeminiAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    private FakeGeminiUpstream _upstream = null!;
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        _upstream = await FakeGeminiUpstream.StartAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _upstream.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_services.GetRequiredService<GeminiAdapter>());

    protected override ProviderContext CreateContext() =>
        new("gemini", new ProviderOptions { Type = "gemini", BaseUrl = _upstream.BaseUrl }, "gemini-2.5-flash", FakeGeminiUpstream.Key);

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _upstream.Script = script;
        return ValueTask.FromResult(true);
    }
}
