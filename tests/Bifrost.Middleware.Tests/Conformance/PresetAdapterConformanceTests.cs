using Bifrost.Middleware.Providers.OpenAI.Presets;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>
/// The preset adapters (the OpenAI-compatible adapter with a preset's quirks) against the adapter conformance suite, over
/// HTTP to the same scripted fake OpenAI upstream, with the provider's BaseUrl pointing at it.
/// </summary>
public abstract class PresetAdapterConformanceTests(string preset) : OpenAICompatibleAdapterConformanceTests
{
    private ServiceProvider _presetServices = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _presetServices = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _presetServices.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_presetServices.GetRequiredService<PresetAdapters>().For(OpenAIPresets.Find(preset)!));

    protected override ProviderContext CreateContext()
    {
        var context = base.CreateContext();
        context.Options.Type = preset;
        return new ProviderContext(preset, context.Options, context.Model, context.ApiKey);
    }
}

/// <summary>The <c>groq</c> preset (drops logprobs, refuses n &gt; 1) through the conformance suite.</summary>
public sealed class GroqPresetConformanceTests() : PresetAdapterConformanceTests("groq");

/// <summary>The <c>deepseek</c> preset (reasoning_content normalized) through the conformance suite.</summary>
public sealed class DeepSeekPresetConformanceTests() : PresetAdapterConformanceTests("deepseek");
