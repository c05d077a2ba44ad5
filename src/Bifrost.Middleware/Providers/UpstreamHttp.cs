using System.Globalization;

namespace Bifrost.Middleware.Providers;

/// <summary>What every HTTP adapter reads the same way from an upstream's answer.</summary>
internal static class UpstreamHttp
{
    /// <summary>The wait an upstream asked for: OpenAI's <c>retry-after-ms</c>, else <c>Retry-After</c> as seconds or as a date.</summary>
    public static TimeSpan? ParseRetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        if (response.Headers.TryGetValues("retry-after-ms", out var ms)
            && double.TryParse(ms.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var milliseconds))
        {
            return TimeSpan.FromMilliseconds(milliseconds);
        }

        if (response.Headers.RetryAfter is { } retryAfter)
        {
            if (retryAfter.Delta is { } delta)
            {
                return delta;
            }

            if (retryAfter.Date is { } date)
            {
                var wait = date - time.GetUtcNow();
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
        }

        return null;
    }
}
