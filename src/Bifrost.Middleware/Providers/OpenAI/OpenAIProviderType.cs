using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>Type <c>openai</c>: OpenAI and every server speaking its HTTP API (a BaseUrl is required).</summary>
internal class OpenAIProviderType : IProviderType
{
    public const string TypeName = "openai";

    public virtual string Name => TypeName;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<OpenAICompatibleAdapter>();

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
        if (string.IsNullOrWhiteSpace(options.BaseUrl))
        {
            var name = prefix[(prefix.LastIndexOf(':') + 1)..];
            var hint = Presets.OpenAIPresets.Find(name) is { } preset ? $", or set \"Type\": \"{preset.Name}\" to use {preset.BaseUrl}" : string.Empty;
            errors.AddError($"{prefix}:BaseUrl is required for an OpenAI-compatible provider (e.g. https://api.openai.com/v1){hint}.");
        }
        else
        {
            ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
        }
    }
}

/// <summary>Type <c>openai-compatible</c>: another name of <see cref="OpenAIProviderType"/>.</summary>
internal sealed class OpenAICompatibleProviderType : OpenAIProviderType
{
    public override string Name => "openai-compatible";
}
