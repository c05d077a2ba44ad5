using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.Cohere;

/// <summary>Type <c>cohere</c>: Cohere's v2 API (the BaseUrl is optional: <see cref="CohereAdapter.DefaultBaseUrl"/>).</summary>
internal sealed class CohereProviderType : IProviderType
{
    public const string TypeName = "cohere";

    public string Name => TypeName;

    /// <summary>
    /// Only an explicit <c>Type</c> selects it: a provider merely named so stays <c>openai</c>, as before this type existed
    /// (such a provider may well point at the vendor's OpenAI-compatible endpoint).
    /// </summary>
    public bool ImpliedByProviderName => false;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<CohereAdapter>();

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors) => ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
}
