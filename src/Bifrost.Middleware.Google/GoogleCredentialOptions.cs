namespace Bifrost.Middleware.Google;

/// <summary>Where <c>UseGoogleCredentials</c> gets Google credentials, and the scopes tokens are requested for.</summary>
public sealed class GoogleCredentialOptions
{
    /// <summary>The scope Vertex AI needs: <c>https://www.googleapis.com/auth/cloud-platform</c>.</summary>
    public const string CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";

    /// <summary>
    /// A JSON credential file (e.g. a service-account key) instead of Application Default Credentials. Its <c>type</c> must
    /// be <see cref="CredentialType"/>.
    /// </summary>
    public string? CredentialsFile { get; set; }

    /// <summary>
    /// The JSON of a credential (e.g. a service-account key read from a secret store) instead of Application Default
    /// Credentials. Its <c>type</c> must be <see cref="CredentialType"/>. Not together with <see cref="CredentialsFile"/>.
    /// </summary>
    public string? CredentialsJson { get; set; }

    /// <summary>
    /// The <c>type</c> a <see cref="CredentialsFile"/> or <see cref="CredentialsJson"/> must declare (checked, as Google
    /// advises for credentials from configuration): <c>service_account</c> (the default), <c>authorized_user</c>,
    /// <c>external_account</c> (workload identity federation) or <c>impersonated_service_account</c>.
    /// </summary>
    public string CredentialType { get; set; } = "service_account";

    /// <summary>The scopes of the tokens (applied when the credential needs scopes). Default: <see cref="CloudPlatformScope"/>.</summary>
    public IList<string> Scopes { get; set; } = [CloudPlatformScope];
}
