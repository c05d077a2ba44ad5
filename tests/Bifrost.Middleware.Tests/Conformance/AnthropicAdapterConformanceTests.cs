using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Anthropic;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>The Anthropic adapter against the adapter conformance suite, over HTTP to the fake Anthropic upstream.</summary>
public sealed class AnthropicAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    private FakeAnthropicUpstream _upstream = null!;
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        _upstream = await FakeAnthropicUpstream.StartAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _upstream.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_services.GetRequiredService<AnthropicAdapter>());

    protected override ProviderContext CreateContext() =>
        new("anthropic", new ProviderOptions { Type = "anthropic", BaseUrl = _upstream.BaseUrl }, "claude-sonnet-4-5", "sk-ant-test");

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _upstream.Script = script;
        return ValueTask.FromResult(true);
    }
}
