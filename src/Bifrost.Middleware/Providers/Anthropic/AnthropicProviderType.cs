using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.Anthropic;

/// <summary>Type <c>anthropic</c>: Anthropic's Messages API (the BaseUrl is optional: <see cref="AnthropicAdapter.DefaultBaseUrl"/>).</summary>
internal sealed class AnthropicProviderType : IProviderType
{
    public const string TypeName = "anthropic";

    public string Name => TypeName;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<AnthropicAdapter>();

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors) => ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
}
