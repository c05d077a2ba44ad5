using System.Net.Http.Headers;
using Bifrost.Middleware.Providers;
using Google.Apis.Auth.OAuth2;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Google;

/// <summary>
/// Puts a Google OAuth access token in <c>Authorization: Bearer</c> of every upstream request of a provider (replacing a
/// configured key), and the credential's quota project in <c>x-goog-user-project</c>. The credential is loaded once, on
/// the first request (so a host starts without network calls), and scoped; it caches its token and refreshes it before it
/// expires (Google.Apis.Auth's own refresh). When the upstream refuses a token with a 401, a new one is requested at once
/// (once for concurrent refusals of the same token). The token is never logged.
/// </summary>
internal sealed partial class GoogleCredentialAuthenticator : IUpstreamAuthenticator, IDisposable
{
    /// <summary>The header naming the project billed for quota (Google's <c>x-goog-user-project</c>).</summary>
    public const string QuotaProjectHeader = "x-goog-user-project";

    private readonly Func<CancellationToken, Task<GoogleCredential>> _load;
    private readonly string[] _scopes;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile GoogleCredential? _credential;

    public GoogleCredentialAuthenticator(Func<CancellationToken, Task<GoogleCredential>> load, string[] scopes, ILogger<GoogleCredentialAuthenticator> logger)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(scopes);
        _load = load;
        _scopes = scopes;
        _logger = logger;
    }

    public async ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var credential = _credential ?? await LoadAsync(context.ProviderName, cancellationToken).ConfigureAwait(false);
        ITokenAccess tokens = credential;
        var token = await tokens.GetAccessTokenForRequestAsync(null, cancellationToken).ConfigureAwait(false);
        if (context.Unauthorized && string.Equals(token, request.Headers.Authorization?.Parameter, StringComparison.Ordinal))
        {
            token = await RefreshAsync(credential, token, context.ProviderName, cancellationToken).ConfigureAwait(false);
        }

        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (credential.QuotaProject is { Length: > 0 } quotaProject && !request.Headers.Contains(QuotaProjectHeader))
        {
            request.Headers.TryAddWithoutValidation(QuotaProjectHeader, quotaProject);
        }
    }

    public void Dispose() => _gate.Dispose();

    private async ValueTask<GoogleCredential> LoadAsync(string provider, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_credential is { } loaded)
            {
                return loaded;
            }

            var credential = await _load(cancellationToken).ConfigureAwait(false);
            if (credential.IsCreateScopedRequired)
            {
                credential = credential.CreateScoped(_scopes);
            }

            Log.CredentialLoaded(_logger, provider, credential.UnderlyingCredential.GetType().Name);
            return _credential = credential;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Requests a new token unless another request already replaced <paramref name="refused"/>.</summary>
    private async ValueTask<string> RefreshAsync(GoogleCredential credential, string refused, string provider, CancellationToken cancellationToken)
    {
        ITokenAccess tokens = credential;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = await tokens.GetAccessTokenForRequestAsync(null, cancellationToken).ConfigureAwait(false);
            if (!string.Equals(current, refused, StringComparison.Ordinal))
            {
                return current;
            }

            var refreshed = credential.UnderlyingCredential switch
            {
                ServiceCredential service => await service.RequestAccessTokenAsync(cancellationToken).ConfigureAwait(false),
                UserCredential user => await user.RefreshTokenAsync(cancellationToken).ConfigureAwait(false),
                _ => false,
            };
            Log.TokenRefreshedAfterUnauthorized(_logger, provider, refreshed);
            return await tokens.GetAccessTokenForRequestAsync(null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1102, Level = LogLevel.Debug, Message = "Google credentials for provider '{Provider}' loaded ({CredentialType}).")]
        public static partial void CredentialLoaded(ILogger logger, string provider, string credentialType);

        [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Provider '{Provider}' refused a Google access token with 401; a new one was requested (refreshed: {Refreshed}).")]
        public static partial void TokenRefreshedAfterUnauthorized(ILogger logger, string provider, bool refreshed);
    }
}
