using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Type <c>bedrock</c>: Amazon Bedrock Runtime's Converse API (<see cref="BedrockAdapter"/>). <c>Region</c> is required unless
/// BaseUrl is set; credentials are a Bedrock API key in <c>Keys</c>, or an <see cref="IUpstreamAuthenticator"/> registered
/// for the provider (SigV4: <c>UseBedrockSigV4</c> of package Bifrost.Middleware.Bedrock).
/// </summary>
internal sealed class BedrockProviderType : IProviderType
{
    public const string TypeName = "bedrock";

    public string Name => TypeName;

    /// <summary>Only an explicit <c>Type</c> selects it: a provider merely named <c>bedrock</c> stays <c>openai</c>, as before this type existed.</summary>
    public bool ImpliedByProviderName => false;

    /// <summary>A Bedrock provider needs a key or an authenticator: nothing else can sign its requests.</summary>
    public string? CredentialsRequired =>
        "a Bedrock API key in Keys (sent as Authorization: Bearer), or SigV4 signing with builder.UseBedrockSigV4(\"<provider>\") from package Bifrost.Middleware.Bedrock";

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<BedrockAdapter>();

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
        ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
        if (string.IsNullOrWhiteSpace(options.Region))
        {
            if (string.IsNullOrWhiteSpace(options.BaseUrl))
            {
                errors.AddError($"{prefix}:Region is required for a Bedrock provider (e.g. us-east-1), unless BaseUrl is set.");
            }
        }
        else if (!IsRegion(options.Region.Trim()))
        {
            errors.AddError($"{prefix}:Region '{options.Region}' is not an AWS region name (e.g. us-east-1).");
        }
    }

    private static bool IsRegion(string region) =>
        region.Length is > 0 and <= 64 && region.All(static c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && region[0] != '-' && region[^1] != '-';
}
