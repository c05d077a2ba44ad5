using Bifrost.Middleware.Caching;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// The response cache's request headers (<c>x-bf-cache-*</c>, <c>Cache-Control</c>) read at the endpoint into the flow's
/// <see cref="CacheRequest"/>, and the layer's outcome written back as <c>x-bf-cache-status</c>: the cache layer itself
/// never sees the HttpContext.
/// </summary>
internal static class CacheHeaders
{
    /// <summary>
    /// Reads the cache headers of an HTTP call into the flow (only when the cache is on), and reports the layer's outcome in
    /// the <c>x-bf-cache-status</c> response header (<c>hit</c>, <c>miss</c>, <c>bypass</c>). <c>x-bf-cache-type</c>:
    /// <c>direct</c> (the exact cache only) or <c>semantic</c> (the semantic cache only); <c>x-bf-cache-threshold</c>: the
    /// semantic threshold, which may only raise the configured one. A key longer than 256 characters is a 400; a TTL or
    /// threshold that does not parse is ignored, as in Bifrost.
    /// </summary>
    public static void Enter(HttpContext context)
    {
        if (context.RequestServices.GetService<ResponseCacheSettings>() is not { Enabled: true })
        {
            return;
        }

        var headers = context.Request.Headers;
        var key = headers[CacheRequest.KeyHeader].ToString().Trim();
        if (key.Length > CacheRequest.MaxKeyLength)
        {
            throw BifrostErrors.InvalidRequest("invalid_cache_key", $"The {CacheRequest.KeyHeader} header is longer than {CacheRequest.MaxKeyLength} characters.", CacheRequest.KeyHeader);
        }

        var cacheControl = headers.CacheControl.ToString();
        var type = headers[CacheRequest.TypeHeader].ToString().Trim();
        var outcome = new CacheOutcomeBox();
        CacheRequest.Current = new CacheRequest(
            Governance.GovernanceCaller.OwnerOf(context),
            key.Length == 0 ? null : key,
            ParseTtl(headers[CacheRequest.TtlHeader].ToString()),
            IsTrue(headers[CacheRequest.NoStoreHeader].ToString()) || HasDirective(cacheControl, "no-store"),
            IsTrue(headers[CacheRequest.RefreshHeader].ToString()) || HasDirective(cacheControl, "no-cache"),
            string.Equals(type, "semantic", StringComparison.OrdinalIgnoreCase),
            outcome)
        {
            DirectOnly = string.Equals(type, "direct", StringComparison.OrdinalIgnoreCase),
            Threshold = ParseThreshold(headers[CacheRequest.ThresholdHeader].ToString()),
        };
        context.Response.OnStarting(static state =>
        {
            var (response, box) = ((HttpResponse, CacheOutcomeBox))state;
            if (box.Status is { } status)
            {
                response.Headers[CacheRequest.StatusHeader] = status;
            }

            return Task.CompletedTask;
        }, (context.Response, outcome));
    }

    /// <summary>The semantic threshold header as Bifrost takes it: a number clamped to [0, 1]; null when it does not parse (ignored).</summary>
    internal static double? ParseThreshold(string? value) =>
        double.TryParse(value?.Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var threshold) && double.IsFinite(threshold)
            ? Math.Clamp(threshold, 0.0, 1.0)
            : null;

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
