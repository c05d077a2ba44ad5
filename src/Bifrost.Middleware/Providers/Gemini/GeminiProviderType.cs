using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.Gemini;

/// <summary>Type <c>gemini</c>: the Gemini API of Google AI Studio (the BaseUrl is optional: <see cref="GeminiAdapter.DefaultBaseUrl"/>).</summary>
internal sealed class GeminiProviderType : IProviderType
{
    public const string TypeName = "gemini";

    public string Name => TypeName;

    /// <summary>
    /// Only an explicit <c>Type</c> selects it: a provider merely named so stays <c>openai</c>, as before this type existed
    /// (such a provider may well point at the vendor's OpenAI-compatible endpoint).
    /// </summary>
    public bool ImpliedByProviderName => false;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<GeminiAdapter>();

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors) => ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
}
