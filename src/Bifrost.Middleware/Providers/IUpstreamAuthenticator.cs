namespace Bifrost.Middleware.Providers;

/// <summary>
/// Authenticates upstream requests with a credential that is not a static key: an Entra ID token
/// (<c>Bifrost.Middleware.Azure</c>), a Google access token, a SigV4 signature, ... Registered per provider name with
/// <c>AddUpstreamAuthenticator</c>; the built-in HTTP adapters call it on every upstream request, after the request is
/// built (URL, headers, body, the configured key if any) and before it is sent — on every retry again, so a refreshed
/// token is used. When the upstream answers 401 to a request whose body can be sent again, it is called once more with
/// <see cref="UpstreamAuthContext.Unauthorized"/> set, and the request is sent again with the new credential (what counts as
/// refused is <see cref="IsCredentialRefused"/>: a 401 unless the authenticator says more). A custom adapter gets it from <see cref="ProviderContext.Authenticator"/> and should call it the same way.
/// </summary>
/// <remarks>
/// Implementations are singletons shared by concurrent requests: cache the credential, refresh it before it expires, and
/// never log it or put it in an exception message. Throw a <see cref="BifrostException"/> for a failure the caller should
/// see; any other exception (except cancellation) becomes a retryable 502 <c>upstream_auth_failed</c>.
/// </remarks>
public interface IUpstreamAuthenticator
{
    /// <summary>Adds the credential to <paramref name="request"/> (e.g. sets <c>Authorization</c>), or signs it.</summary>
    /// <param name="request">The request about to be sent (its body may be read, e.g. to sign it).</param>
    /// <param name="context">The provider, its options and key, and whether the previous try was refused with a 401.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken);

    // gaps: an authenticator may take other answers than a 401 for a refused credential (e.g. AWS's 403 ExpiredTokenException).

    /// <summary>
    /// Whether <paramref name="response"/> refuses the credential the request was authenticated with, so that the request
    /// is authenticated again (with <see cref="UpstreamAuthContext.Unauthorized"/> set) and sent once more. By default a 401;
    /// only the status and headers are looked at (the body is still the caller's to read).
    /// </summary>
    /// <param name="response">The upstream's answer to the authenticated request.</param>
    bool IsCredentialRefused(HttpResponseMessage response) => response?.StatusCode == System.Net.HttpStatusCode.Unauthorized;
}

/// <summary>What an <see cref="IUpstreamAuthenticator"/> knows about the request it authenticates.</summary>
public sealed class UpstreamAuthContext
{
    /// <summary>Creates a context.</summary>
    /// <param name="provider">The attempt's provider context.</param>
    /// <param name="unauthorized">True when the same request was just refused with a 401 (refresh the credential).</param>
    public UpstreamAuthContext(ProviderContext provider, bool unauthorized)
    {
        Provider = provider ?? throw new ArgumentNullException(nameof(provider));
        Unauthorized = unauthorized;
    }

    /// <summary>The attempt's provider context (provider name, options, model, the configured key if any).</summary>
    public ProviderContext Provider { get; }

    /// <summary>The configured provider name.</summary>
    public string ProviderName => Provider.ProviderName;

    /// <summary>The provider's options.</summary>
    public ProviderOptions Options => Provider.Options;

    /// <summary>The key chosen for the attempt from the provider's <c>Keys</c>, or null when it has none.</summary>
    public string? ApiKey => Provider.ApiKey;

    /// <summary>
    /// True when the upstream just refused this request's current credential (a 401, or what
    /// <see cref="IUpstreamAuthenticator.IsCredentialRefused"/> says): get a new one.
    /// </summary>
    public bool Unauthorized { get; }
}
