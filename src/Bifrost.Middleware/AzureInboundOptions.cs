using Microsoft.Extensions.Options;

namespace Bifrost.Middleware;

/// <summary>
/// Options of the Azure OpenAI-compatible inbound routes that <c>MapBifrostAzure</c> maps
/// (<c>{prefix}/openai/deployments/{deployment}/chat/completions</c>, ...), bound from <c>Bifrost:AzureInbound</c> and
/// checked at start.
/// </summary>
public sealed class AzureInboundOptions
{
    /// <summary>The longest deployment name or mapped model accepted (Azure's deployment names are at most 64 characters).</summary>
    internal const int MaxNameLength = 256;

    /// <summary>
    /// Deployment name → the model the call is routed to, as a request's <c>model</c> would name it (<c>openai/gpt-4o-mini</c>,
    /// or a bare model for the default provider). A deployment not listed is used as the model itself: the deployment name
    /// is the model, routed by the usual <c>provider/model</c> rules (<c>deployments/openai/gpt-4o-mini/...</c> names the
    /// provider in the path). Names are compared exactly (case-sensitive), as Azure's are.
    /// </summary>
    public IDictionary<string, string> Deployments { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Whether a call without the <c>api-version</c> query is refused (400 <c>missing_api_version</c>), as Azure refuses it.
    /// Default false, as Bifrost: the version is accepted and not used (every call is answered in the current shapes, and
    /// it is never sent upstream).
    /// </summary>
    public bool RequireApiVersion { get; set; }

    /// <summary>Checks the deployments: names and models not blank, without surrounding spaces, at most <see cref="MaxNameLength"/> characters.</summary>
    internal static void Validate(AzureInboundOptions? options, ValidateOptionsResultBuilder builder)
    {
        if (options is null)
        {
            return;
        }

        foreach (var (name, model) in options.Deployments)
        {
            var at = $"Bifrost:AzureInbound:Deployments:{name}";
            if (!IsName(name))
            {
                builder.AddError($"{at}: the deployment name must be 1 to {MaxNameLength} characters without surrounding spaces.");
            }

            if (!IsName(model) || model.StartsWith('/') || model.EndsWith('/'))
            {
                builder.AddError($"{at} must name the model the deployment is routed to ('provider/model' or a bare model), got '{model}'.");
            }
        }
    }

    private static bool IsName(string? value) =>
        !string.IsNullOrWhiteSpace(value) && value.Length <= MaxNameLength && value.Trim().Length == value.Length;
}
