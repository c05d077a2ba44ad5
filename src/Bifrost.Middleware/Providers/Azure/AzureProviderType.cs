using Bifrost.Middleware.Providers.OpenAI;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.Azure;

/// <summary>
/// Type <c>azure</c>: Azure OpenAI, through the OpenAI-compatible adapter with Azure's URLs (<see cref="AzureOpenAI.For"/>),
/// deployments, <c>api-key</c> header and content-filter error. BaseUrl is the resource endpoint
/// (<c>https://{resource}.openai.azure.com</c>). Keys are optional: an Entra ID authenticator may stand in for them.
/// </summary>
internal sealed class AzureProviderType : IProviderType
{
    public const string TypeName = "azure";

    /// <summary>The DI key of the adapter instance serving type <c>azure</c>.</summary>
    public const string AdapterKey = "Bifrost.Azure";

    public string Name => TypeName;

    /// <summary>Only an explicit <c>Type</c> selects it: a provider merely named <c>azure</c> stays <c>openai</c>, as before this type existed.</summary>
    public bool ImpliedByProviderName => false;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredKeyedService<OpenAICompatibleAdapter>(AdapterKey);

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
        if (string.IsNullOrWhiteSpace(options.BaseUrl))
        {
            errors.AddError($"{prefix}:BaseUrl is required for an Azure OpenAI provider (the resource endpoint, e.g. https://my-resource.openai.azure.com).");
        }
        else
        {
            ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
        }

        if (options.ApiVersion is { } version && version.AsSpan().Trim().IndexOfAny("?&#/ ") >= 0)
        {
            errors.AddError($"{prefix}:ApiVersion '{version}' is not an API version (e.g. v1, 2024-10-21, preview).");
        }

        foreach (var (model, deployment) in options.Deployments)
        {
            if (string.IsNullOrWhiteSpace(deployment))
            {
                errors.AddError($"{prefix}:Deployments:{model} needs a deployment name.");
            }
        }
    }
}
