namespace Bifrost.Middleware.Caching;

/// <summary>
/// The response cache's per-request controls for in-process calls (<see cref="IBifrostClient"/>): what the
/// <c>x-bf-cache-*</c> headers say for HTTP calls. Apply them to the calls made inside a scope:
/// <code>using (BifrostCacheControl.Begin(new() { Key = "faq" })) { await client.ChatCompletionAsync(request); }</code>
/// </summary>
public sealed class BifrostCacheControl
{
    /// <summary>The cache key (<c>x-bf-cache-key</c>): the calls are cached only with a key (or the configured default key).</summary>
    public string? Key { get; init; }

    /// <summary>The TTL of what these calls store (<c>x-bf-cache-ttl</c>), at most <see cref="ResponseCacheOptions.MaxTtl"/>.</summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>Serve cached answers but store none (<c>x-bf-cache-no-store: true</c>, <c>Cache-Control: no-store</c>).</summary>
    public bool NoStore { get; init; }

    /// <summary>Skip the lookup and store the fresh answer (<c>x-bf-cache-refresh: true</c>, <c>Cache-Control: no-cache</c>).</summary>
    public bool Refresh { get; init; }

    /// <summary>The semantic cache's threshold for these calls (<c>x-bf-cache-threshold</c>): it may only raise the configured one (a lower value is ignored).</summary>
    public double? Threshold { get; init; }

    /// <summary>The tenant the entries belong to (HTTP calls: the caller's virtual key or job owner; in-process calls: this, else one shared <c>host</c> tenant).</summary>
    public string? Tenant { get; init; }

    /// <summary>Applies <paramref name="control"/> to the gateway calls of this async flow until the returned scope is disposed.</summary>
    /// <param name="control">The controls.</param>
    /// <returns>The scope; disposing it restores the previous controls.</returns>
    public static IDisposable Begin(BifrostCacheControl control)
    {
        ArgumentNullException.ThrowIfNull(control);
        var previous = CacheRequest.Current;
        CacheRequest.Current = new CacheRequest(control.Tenant, control.Key, control.Ttl, control.NoStore, control.Refresh, SemanticOnly: false, Outcome: null) { Threshold = control.Threshold };
        return new Scope(previous);
    }

    private sealed class Scope(CacheRequest? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                CacheRequest.Current = previous;
            }
        }
    }
}

/// <summary>Where the HTTP endpoint learns what the cache layer did with its call (for the <c>x-bf-cache-status</c> response header).</summary>
internal sealed class CacheOutcomeBox
{
    public string? Status { get; set; }
}

/// <summary>
/// The cache controls of the current call, carried to the pipeline in an <see cref="AsyncLocal{T}"/> (the pipeline never
/// sees the HttpContext): set by the inference endpoint from the <c>x-bf-cache-*</c> and <c>Cache-Control</c> headers
/// (<see cref="Endpoints.CacheHeaders"/>), or
/// by <see cref="BifrostCacheControl.Begin"/>.
/// </summary>
internal sealed record CacheRequest(string? Tenant, string? Key, TimeSpan? Ttl, bool NoStore, bool Refresh, bool SemanticOnly, CacheOutcomeBox? Outcome)
{
    /// <summary><c>x-bf-cache-type: direct</c>: the exact cache only, no semantic lookup.</summary>
    public bool DirectOnly { get; init; }

    /// <summary><c>x-bf-cache-threshold</c>, within [0, 1]: the semantic threshold this call asks for (only a higher one than configured applies).</summary>
    public double? Threshold { get; init; }

    public const string KeyHeader = "x-bf-cache-key";
    public const string TtlHeader = "x-bf-cache-ttl";
    public const string NoStoreHeader = "x-bf-cache-no-store";
    public const string RefreshHeader = "x-bf-cache-refresh";
    public const string TypeHeader = "x-bf-cache-type";
    public const string ThresholdHeader = "x-bf-cache-threshold";
    public const string StatusHeader = "x-bf-cache-status";
    public const int MaxKeyLength = 256;

    private static readonly AsyncLocal<CacheRequest?> CurrentRequest = new();

    public static CacheRequest? Current
    {
        get => CurrentRequest.Value;
        set => CurrentRequest.Value = value;
    }
}
