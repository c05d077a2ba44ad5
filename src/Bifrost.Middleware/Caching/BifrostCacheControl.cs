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

    /// <summary>The tenant the entries belong to (HTTP calls: the caller's virtual key or job owner; in-process calls: this, else one shared <c>host</c> tenant).</summary>
    public string? Tenant { get; init; }

    /// <summary>Applies <paramref name="control"/> to the gateway calls of this async flow until the returned scope is disposed.</summary>
    /// <param name="control">The controls.</param>
    /// <returns>The scope; disposing it restores the previous controls.</returns>
    public static IDisposable Begin(BifrostCacheControl control)
    {
        ArgumentNullException.ThrowIfNull(control);
        var previous = CacheRequest.Current;
        CacheRequest.Current = new CacheRequest(control.Tenant, control.Key, control.Ttl, control.NoStore, control.Refresh, SemanticOnly: false, Outcome: null);
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
/// sees the HttpContext): set by the inference endpoint from the <c>x-bf-cache-*</c> and <c>Cache-Control</c> headers, or
/// by <see cref="BifrostCacheControl.Begin"/>.
/// </summary>
internal sealed record CacheRequest(string? Tenant, string? Key, TimeSpan? Ttl, bool NoStore, bool Refresh, bool SemanticOnly, CacheOutcomeBox? Outcome)
{
    public const string KeyHeader = "x-bf-cache-key";
    public const string TtlHeader = "x-bf-cache-ttl";
    public const string NoStoreHeader = "x-bf-cache-no-store";
    public const string RefreshHeader = "x-bf-cache-refresh";
    public const string TypeHeader = "x-bf-cache-type";
    public const string StatusHeader = "x-bf-cache-status";
    public const int MaxKeyLength = 256;

    private static readonly AsyncLocal<CacheRequest?> CurrentRequest = new();

    public static CacheRequest? Current
    {
        get => CurrentRequest.Value;
        set => CurrentRequest.Value = value;
    }

    /// <summary>
    /// Reads the cache headers of an HTTP call into the flow (only when the cache is on), and reports the layer's outcome in
    /// the <c>x-bf-cache-status</c> response header (<c>hit</c>, <c>miss</c>, <c>bypass</c>). A key longer than 256
    /// characters is a 400; a TTL that does not parse is ignored, as in Bifrost.
    /// </summary>
    public static void Enter(HttpContext context)
    {
        if (context.RequestServices.GetService<ResponseCacheSettings>() is not { Enabled: true })
        {
            return;
        }

        var headers = context.Request.Headers;
        var key = headers[KeyHeader].ToString().Trim();
        if (key.Length > MaxKeyLength)
        {
            throw BifrostErrors.InvalidRequest("invalid_cache_key", $"The {KeyHeader} header is longer than {MaxKeyLength} characters.", KeyHeader);
        }

        var cacheControl = headers.CacheControl.ToString();
        var outcome = new CacheOutcomeBox();
        Current = new CacheRequest(
            Governance.GovernanceCaller.OwnerOf(context),
            key.Length == 0 ? null : key,
            ParseTtl(headers[TtlHeader].ToString()),
            IsTrue(headers[NoStoreHeader].ToString()) || HasDirective(cacheControl, "no-store"),
            IsTrue(headers[RefreshHeader].ToString()) || HasDirective(cacheControl, "no-cache"),
            string.Equals(headers[TypeHeader].ToString().Trim(), "semantic", StringComparison.OrdinalIgnoreCase),
            outcome);
        context.Response.OnStarting(static state =>
        {
            var (response, box) = ((HttpResponse, CacheOutcomeBox))state;
            if (box.Status is { } status)
            {
                response.Headers[StatusHeader] = status;
            }

            return Task.CompletedTask;
        }, (context.Response, outcome));
    }

    /// <summary>A duration as Bifrost takes it: seconds (<c>300</c>) or a Go-style duration (<c>30s</c>, <c>5m</c>, <c>1h</c>, <c>1h30m</c>); null when it does not parse or is not positive.</summary>
    internal static TimeSpan? ParseTtl(string? value)
    {
        value = value?.Trim();
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
        {
            return seconds > 0 && seconds < TimeSpan.MaxValue.TotalSeconds / 2 ? TimeSpan.FromSeconds(seconds) : null;
        }

        var total = TimeSpan.Zero;
        var span = value.AsSpan();
        while (!span.IsEmpty)
        {
            var digits = 0;
            while (digits < span.Length && (char.IsAsciiDigit(span[digits]) || span[digits] == '.'))
            {
                digits++;
            }

            if (digits == 0 || !double.TryParse(span[..digits], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var amount))
            {
                return null;
            }

            span = span[digits..];
            var unit = 0;
            while (unit < span.Length && char.IsAsciiLetter(span[unit]))
            {
                unit++;
            }

            double? factor = span[..unit] switch
            {
                "ms" => 0.001,
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => null,
            };
            if (factor is null || amount * factor.Value > 366 * 86400)
            {
                return null;
            }

            total += TimeSpan.FromSeconds(amount * factor.Value);
            span = span[unit..];
        }

        return total > TimeSpan.Zero ? total : null;
    }

    private static bool IsTrue(string value) => bool.TryParse(value.Trim(), out var flag) && flag;

    private static bool HasDirective(string cacheControl, string directive)
    {
        foreach (var part in cacheControl.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (string.Equals(part, directive, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
