using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.Vertex;

/// <summary>
/// Type <c>vertex</c>: Google Cloud Vertex AI (Gemini and Claude models). Requires <c>ProjectId</c>; <c>Region</c> is a
/// location name (default <c>us-central1</c>, or <c>global</c>); BaseUrl is optional. Credentials: <c>Keys</c> (OAuth access
/// tokens) or an <see cref="IUpstreamAuthenticator"/> registered for the provider (<c>UseGoogleCredentials</c> of
/// <c>Bifrost.Middleware.Google</c>) — one of the two, checked at start. Express mode instead of a project: no
/// <c>ProjectId</c>, <c>Keys</c> holding express-mode API keys and <c>AuthHeader: x-goog-api-key</c>.
/// </summary>
internal sealed class VertexProviderType : IProviderType
{
    public const string TypeName = "vertex";

    public string Name => TypeName;

    /// <summary>Only an explicit <c>Type</c> selects it: a provider merely named so stays <c>openai</c>, as before this type existed.</summary>
    public bool ImpliedByProviderName => false;

    /// <summary>Vertex AI needs an access token: a key or an authenticator (checked at start by the options validator).</summary>
    public string? CredentialsRequired =>
        "Keys (an OAuth access token, e.g. from 'gcloud auth print-access-token'), or Google credentials registered with builder.UseGoogleCredentials(\"<provider>\") from the Bifrost.Middleware.Google package";

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<VertexAdapter>();

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
        ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
        var express = string.Equals(options.AuthHeader?.Trim(), VertexAdapter.ApiKeyHeader, StringComparison.OrdinalIgnoreCase);
        if (string.IsNullOrWhiteSpace(options.ProjectId))
        {
            if (!express || options.Keys.Count == 0)
            {
                errors.AddError($"{prefix}:ProjectId is required for a Vertex AI provider (the Google Cloud project id, e.g. my-project), unless it uses Vertex AI express mode: Keys with express-mode API keys and AuthHeader '{VertexAdapter.ApiKeyHeader}'.");
            }
        }
        else if (!IsName(options.ProjectId.Trim(), allowDotsAndColons: true))
        {
            errors.AddError($"{prefix}:ProjectId '{options.ProjectId}' is not a Google Cloud project id (letters, digits, '-', and '.' or ':' for domain-scoped projects).");
        }

        if (!string.IsNullOrWhiteSpace(options.Region) && !IsName(options.Region.Trim(), allowDotsAndColons: false))
        {
            errors.AddError($"{prefix}:Region '{options.Region}' is not a Vertex AI location (e.g. us-central1, europe-west4, global).");
        }

        // vbatch: the Cloud Storage location of native batches
        if (!string.IsNullOrWhiteSpace(options.BatchGcsUri))
        {
            if (VertexAdapter.ParseGcsUri(options.BatchGcsUri) is null)
            {
                errors.AddError($"{prefix}:BatchGcsUri '{options.BatchGcsUri}' is not a Cloud Storage location: gs://bucket or gs://bucket/prefix.");
            }

            if (string.IsNullOrWhiteSpace(options.ProjectId))
            {
                errors.AddError($"{prefix}:BatchGcsUri needs a ProjectId: Vertex AI express mode has no batch prediction.");
            }
        }

        if (!string.IsNullOrWhiteSpace(options.StorageBaseUrl)
            && (!Uri.TryCreate(options.StorageBaseUrl, UriKind.Absolute, out var storage) || (storage.Scheme != Uri.UriSchemeHttps && storage.Scheme != Uri.UriSchemeHttp)))
        {
            errors.AddError($"{prefix}:StorageBaseUrl '{options.StorageBaseUrl}' is not an http(s) URL.");
        }
    }

    private static bool IsName(string value, bool allowDotsAndColons)
    {
        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || (allowDotsAndColons && c is '.' or ':')))
            {
                return false;
            }
        }

        return value.Length > 0;
    }
}
