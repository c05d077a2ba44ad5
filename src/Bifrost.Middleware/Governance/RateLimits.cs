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
/// Per virtual key, in this process: requests and tokens per fixed window of the key's period (the window starts with
/// the first request after the previous one ended, on the injected <see cref="TimeProvider"/>), and requests in flight.
/// Tokens are settled after the call from the usage the provider reported (nothing is reserved up front), so a call
/// starts while the window's settled tokens are below the limit. Not shared between instances.
/// </summary>
internal sealed class GovernanceRateLimiter(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Window> _windows = new(StringComparer.Ordinal);

    /// <summary>Admits a call of <paramref name="key"/> or throws the 429; the lease must be disposed when the call (or its stream) ends.</summary>
    public Lease Acquire(VirtualKey key, KeyRateLimits limits)
    {
        var window = _windows.GetOrAdd(key.Id, static _ => new Window());
        var now = time.GetUtcNow();
        lock (window)
        {
            window.Roll(now, limits.Period);
            var retryAfter = window.Start + limits.Period - now;
            if (limits.Tokens is { } tokens && window.Tokens >= tokens)
            {
                throw Refused("token_limited", "token_limit_exceeded", $"Virtual key '{key.Id}' used {window.Tokens} of its {tokens} tokens per {limits.Period}.", retryAfter);
            }

            if (limits.Requests is { } requests && window.Requests >= requests)
            {
                throw Refused("request_limited", "request_limit_exceeded", $"Virtual key '{key.Id}' made {window.Requests} of its {requests} requests per {limits.Period}.", retryAfter);
            }

            if (limits.Concurrent is { } concurrent && window.InFlight >= concurrent)
            {
                throw Refused("rate_limited", "concurrency_limit_exceeded", $"Virtual key '{key.Id}' already has {window.InFlight} of its {concurrent} concurrent requests in flight.", TimeSpan.FromSeconds(1));
            }

            window.Requests++;
            window.InFlight++;
        }

        return new Lease(this, window, limits);
    }

    private void Settle(Window window, KeyRateLimits limits, long tokens)
    {
        var now = time.GetUtcNow();
        lock (window)
        {
            window.InFlight--;
            if (tokens > 0)
            {
                window.Roll(now, limits.Period);
                window.Tokens += tokens;
            }
        }
    }

    private static BifrostException Refused(string type, string code, string message, TimeSpan retryAfter)
    {
        var error = BifrostException.Gateway(429, type, code, message);
        return new BifrostException(error.Error) { RetryAfter = retryAfter < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : retryAfter, IsRetryable = false };
    }

    internal sealed class Window
    {
        public DateTimeOffset Start = DateTimeOffset.MinValue;
        public long Requests;
        public long Tokens;
        public int InFlight;

        public void Roll(DateTimeOffset now, TimeSpan period)
        {
            if (Start == DateTimeOffset.MinValue || now >= Start + period)
            {
                Start = now;
                Requests = 0;
                Tokens = 0;
            }
        }
    }

    /// <summary>A call admitted: <see cref="Dispose"/> ends it (once), settling the tokens recorded with <see cref="Record"/>.</summary>
    internal sealed class Lease(GovernanceRateLimiter owner, Window window, KeyRateLimits limits) : IDisposable
    {
        private long _tokens;
        private int _disposed;

        public void Record(Operations.TokenCounts? usage)
        {
            if (usage is { } counts)
            {
                _tokens = counts.Input + counts.Output;
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Settle(window, limits, _tokens);
            }
        }
    }
}
