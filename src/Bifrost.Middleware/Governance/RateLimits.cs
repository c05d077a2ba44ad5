using System.Collections.Concurrent;
using System.Globalization;

namespace Bifrost.Middleware.Governance;

/// <summary>A virtual key's rate limits as the gateway enforces them (from <see cref="GovernanceRateLimitOptions"/>).</summary>
internal sealed record KeyRateLimits(long? Requests, long? Tokens, TimeSpan Period, int? Concurrent)
{
    /// <summary>The limits of validated options, or null when the key has none.</summary>
    public static KeyRateLimits? From(GovernanceRateLimitOptions? options) =>
        options is null || (options.Requests is null && options.Tokens is null && options.Concurrent is null)
            ? null
            : new(options.Requests, options.Tokens, RateLimitPeriod.TryParse(options.Period, out var period) ? period : TimeSpan.FromMinutes(1), options.Concurrent);
}

/// <summary>Rate-limit periods: <c>30s</c>, <c>1m</c>, <c>1h</c>, <c>1d</c>, <c>1w</c>, or a TimeSpan (<c>00:01:00</c>).</summary>
internal static class RateLimitPeriod
{
    public static bool TryParse(string? value, out TimeSpan period)
    {
        period = default;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        value = value.Trim();
        var unit = value[^1];
        if (char.IsAsciiLetter(unit) && long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count > 0 && count < 100_000)
        {
            period = unit switch
            {
                's' => TimeSpan.FromSeconds(count),
                'm' => TimeSpan.FromMinutes(count),
                'h' => TimeSpan.FromHours(count),
                'd' => TimeSpan.FromDays(count),
                'w' => TimeSpan.FromDays(7 * count),
                _ => default,
            };
        }
        else if (TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span))
        {
            period = span;
        }

        return period > TimeSpan.Zero;
    }
}

/// <summary>
/// Per virtual key, in this process: requests in flight (<see cref="GovernanceRateLimitOptions.Concurrent"/>). Requests
/// and tokens per period are counted in the <see cref="IGovernanceCounterStore"/> (shared between instances with the
/// PostgreSQL store); concurrency stays per instance.
/// </summary>
internal sealed class GovernanceRateLimiter
{
    private readonly ConcurrentDictionary<string, Slots> _slots = new(StringComparer.Ordinal);

    /// <summary>Takes one of the key's concurrent slots or throws the 429; the lease must be disposed when the call (or its stream) ends.</summary>
    public Lease Acquire(VirtualKey key, int concurrent)
    {
        var slots = _slots.GetOrAdd(key.Id, static _ => new Slots());
        lock (slots)
        {
            if (slots.InFlight >= concurrent)
            {
                throw Refused("rate_limited", "concurrency_limit_exceeded", $"Virtual key '{key.Id}' already has {slots.InFlight} of its {concurrent} concurrent requests in flight.", TimeSpan.FromSeconds(1));
            }

            slots.InFlight++;
        }

        return new Lease(slots);
    }

    /// <summary>A 429 of a rate limit, with its Retry-After (at least a second).</summary>
    public static BifrostException Refused(string type, string code, string message, TimeSpan retryAfter, string? param = null)
    {
        var error = BifrostException.Gateway(429, type, code, message, param);
        return new BifrostException(error.Error) { RetryAfter = retryAfter < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(Math.Ceiling(retryAfter.TotalSeconds)), IsRetryable = false };
    }

    internal sealed class Slots
    {
        public int InFlight;
    }

    /// <summary>A slot taken: <see cref="Dispose"/> frees it (once).</summary>
    internal sealed class Lease(Slots slots) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                lock (slots)
                {
                    slots.InFlight--;
                }
            }
        }
    }
}
