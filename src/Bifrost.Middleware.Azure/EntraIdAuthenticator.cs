using System.Net.Http.Headers;
using Azure.Core;
using Bifrost.Middleware.Providers;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Azure;

/// <summary>
/// Puts an Entra ID access token in <c>Authorization: Bearer</c> of every upstream request of a provider (and removes an
/// <c>api-key</c>). The token is cached and replaced <see cref="AzureEntraIdOptions.RefreshBeforeExpiry"/> before it expires,
/// or at once when the upstream refused it with a 401; concurrent requests share one refresh. The token is never logged.
/// </summary>
internal sealed partial class EntraIdAuthenticator : IUpstreamAuthenticator, IDisposable
{
    /// <summary>Azure OpenAI's scope (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/managed-identity).</summary>
    public const string DefaultScope = "https://cognitiveservices.azure.com/.default";

    private readonly TokenCredential _credential;
    private readonly TokenRequestContext _request;
    private readonly TimeSpan _refreshBefore;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile CachedToken? _cached;

    public EntraIdAuthenticator(TokenCredential credential, AzureEntraIdOptions options, TimeProvider time, ILogger<EntraIdAuthenticator> logger)
    {
        ArgumentNullException.ThrowIfNull(credential);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Scope);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RefreshBeforeExpiry, TimeSpan.Zero);
        _credential = credential;
        _request = new TokenRequestContext([options.Scope]);
        _refreshBefore = options.RefreshBeforeExpiry;
        _time = time;
        _logger = logger;
    }

    public async ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        // after a 401 the request carries the token that was refused: replace it unless another request already did
        var refused = context.Unauthorized ? request.Headers.Authorization?.Parameter : null;
        var token = await GetTokenAsync(context.ProviderName, refused, cancellationToken).ConfigureAwait(false);
        request.Headers.Remove("api-key");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    public void Dispose() => _refresh.Dispose();

    private async ValueTask<string> GetTokenAsync(string provider, string? refused, CancellationToken cancellationToken)
    {
        if (Usable(_cached, refused, _time.GetUtcNow()) is { } fresh)
        {
            return fresh;
        }

        await _refresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var cached = _cached;
            var now = _time.GetUtcNow();
            if (Usable(cached, refused, now) is { } refreshed)
            {
                return refreshed; // another request refreshed it meanwhile
            }

            AccessToken token;
            try
            {
                token = await _credential.GetTokenAsync(_request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && cached is not null && now < cached.ExpiresOn && !string.Equals(cached.Token, refused, StringComparison.Ordinal))
            {
                // an early refresh failed: the current token still works until it expires
                Log.RefreshFailed(_logger, provider, cached.ExpiresOn, ex);
                return cached.Token;
            }

            var refreshAt = token.ExpiresOn - _refreshBefore;
            if (token.RefreshOn is { } refreshOn && refreshOn < refreshAt)
            {
                refreshAt = refreshOn;
            }

            _cached = new CachedToken(token.Token, token.ExpiresOn, refreshAt);
            Log.TokenAcquired(_logger, provider, token.ExpiresOn, refused is not null);
            return token.Token;
        }
        finally
        {
            _refresh.Release();
        }
    }

    private static string? Usable(CachedToken? cached, string? refused, DateTimeOffset now) =>
        cached is not null && now < cached.RefreshAt && !string.Equals(cached.Token, refused, StringComparison.Ordinal) ? cached.Token : null;

    /// <summary>A token and when to replace it (never printed: a record would print the token).</summary>
    private sealed class CachedToken(string token, DateTimeOffset expiresOn, DateTimeOffset refreshAt)
    {
        public string Token { get; } = token;

        public DateTimeOffset ExpiresOn { get; } = expiresOn;

        public DateTimeOffset RefreshAt { get; } = refreshAt;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1040, Level = LogLevel.Debug, Message = "Entra ID token for provider '{Provider}' acquired (expires {ExpiresOn:O}; after a 401: {AfterUnauthorized}).")]
        public static partial void TokenAcquired(ILogger logger, string provider, DateTimeOffset expiresOn, bool afterUnauthorized);

        [LoggerMessage(EventId = 1041, Level = LogLevel.Warning, Message = "Entra ID token refresh for provider '{Provider}' failed; the current token is used until it expires at {ExpiresOn:O}.")]
        public static partial void RefreshFailed(ILogger logger, string provider, DateTimeOffset expiresOn, Exception exception);
    }
}
