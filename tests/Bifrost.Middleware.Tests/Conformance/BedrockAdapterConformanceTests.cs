using Bifrost.Middleware.Providers.Bedrock;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Bedrock;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>The Bedrock adapter against the adapter conformance suite, over HTTP to the fake Bedrock Runtime (Converse, ConverseStream event-stream frames, errors).</summary>
public sealed class BedrockAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    private FakeBedrockUpstream _upstream = null!;
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        _upstream = await FakeBedrockUpstream.StartAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _upstream.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_services.GetRequiredService<BedrockAdapter>());

    protected override ProviderContext CreateContext() =>
        new("bedrock", new ProviderOptions { Type = "bedrock", BaseUrl = _upstream.BaseUrl, Region = "us-east-1" }, "anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock-test-key");

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _upstream.Script = script;
        return ValueTask.FromResult(true);
    }
}
