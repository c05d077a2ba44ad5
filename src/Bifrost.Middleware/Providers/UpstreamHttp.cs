using System.Globalization;

namespace Bifrost.Middleware.Providers;

/// <summary>What every HTTP adapter reads the same way from an upstream's answer.</summary>
internal static class UpstreamHttp
{
    /// <summary>How much of an error body is read (a provider's error message, never a stream).</summary>
    public const int MaxErrorBodyBytes = 64 * 1024;

    /// <summary>The start of an error body as text (at most <see cref="MaxErrorBodyBytes"/>); empty when it cannot be read.</summary>
    public static async Task<string> ReadErrorTextAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[MaxErrorBodyBytes];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await body.ReadAsync(buffer.AsMemory(read), cancellationToken).ConfigureAwait(false)) > 0)
            {
                read += n;
            }

            return System.Text.Encoding.UTF8.GetString(buffer, 0, read);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return string.Empty;
        }
    }

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
