using Bifrost.Middleware;
using Bifrost.Middleware.Google;
using Google.Apis.Auth.OAuth2;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Google Cloud credentials for Vertex AI providers.</summary>
public static class BifrostGoogleBuilderExtensions
{
    /// <summary>
    /// Authenticates provider <paramref name="providerName"/> (type <c>vertex</c>) with Google OAuth access tokens
    /// (<c>Authorization: Bearer</c>), so the provider needs no <c>Keys</c>. By default the credential is Google's
    /// Application Default Credentials (<c>GOOGLE_APPLICATION_CREDENTIALS</c>, the gcloud user credentials, the metadata
    /// server of GCE / GKE / Cloud Run); <see cref="GoogleCredentialOptions.CredentialsFile"/> or
    /// <see cref="GoogleCredentialOptions.CredentialsJson"/> name a service-account key instead. The identity needs the role
    /// <c>Vertex AI User</c> (<c>roles/aiplatform.user</c>) on the project.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="providerName">The provider's name under <c>Bifrost:Providers</c>.</param>
    /// <param name="configure">Names a credential file or JSON, or changes the scopes.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseGoogleCredentials(this IBifrostBuilder builder, string providerName, Action<GoogleCredentialOptions>? configure = null)
    {
        var options = Options(configure);
        var file = options.CredentialsFile;
        var json = options.CredentialsJson;
        var type = options.CredentialType;
        Func<CancellationToken, Task<GoogleCredential>> load =
            file is not null ? ct => CredentialFactory.FromFileAsync(file, type, ct)
            : json is not null ? _ => Task.FromResult(CredentialFactory.FromJson(json, type))
            : GoogleCredential.GetApplicationDefaultAsync;
        return Register(builder, providerName, options, load);
    }

    /// <summary>
    /// Authenticates provider <paramref name="providerName"/> (type <c>vertex</c>) with access tokens from
    /// <paramref name="credential"/> (scoped with <see cref="GoogleCredentialOptions.Scopes"/> when it needs scopes).
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="providerName">The provider's name under <c>Bifrost:Providers</c>.</param>
    /// <param name="credential">The credential tokens come from.</param>
    /// <param name="configure">Changes the scopes (a credential file or JSON set here is refused: the credential is given).</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseGoogleCredentials(this IBifrostBuilder builder, string providerName, GoogleCredential credential, Action<GoogleCredentialOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(credential);
        var options = Options(configure);
        if (options.CredentialsFile is not null || options.CredentialsJson is not null)
        {
            throw new ArgumentException("A credential is given: CredentialsFile and CredentialsJson must not be set.", nameof(configure));
        }

        return Register(builder, providerName, options, _ => Task.FromResult(credential));
    }

    private static GoogleCredentialOptions Options(Action<GoogleCredentialOptions>? configure)
    {
        var options = new GoogleCredentialOptions();
        configure?.Invoke(options);
        if (options.CredentialsFile is not null && options.CredentialsJson is not null)
        {
            throw new ArgumentException("Set CredentialsFile or CredentialsJson, not both.", nameof(configure));
        }

        if (options.CredentialsFile is { } file && string.IsNullOrWhiteSpace(file))
        {
            throw new ArgumentException("CredentialsFile must not be empty.", nameof(configure));
        }

        if (options.CredentialsJson is { } json && string.IsNullOrWhiteSpace(json))
        {
            throw new ArgumentException("CredentialsJson must not be empty.", nameof(configure));
        }

        ArgumentException.ThrowIfNullOrWhiteSpace(options.CredentialType, nameof(configure));
        if (options.Scopes is not { Count: > 0 } scopes || scopes.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException("Scopes must name at least one scope, none empty.", nameof(configure));
        }

        return options;
    }

    private static IBifrostBuilder Register(IBifrostBuilder builder, string providerName, GoogleCredentialOptions options, Func<CancellationToken, Task<GoogleCredential>> load)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(providerName);
        string[] scopes = [.. options.Scopes];
        return builder.AddUpstreamAuthenticator(providerName, services => new GoogleCredentialAuthenticator(
            load,
            scopes,
            services.GetRequiredService<ILogger<GoogleCredentialAuthenticator>>()));
    }
}
