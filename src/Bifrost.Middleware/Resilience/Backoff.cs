namespace Bifrost.Middleware.Resilience;

/// <summary>
/// The one backoff policy of the gateway, used by provider retries (<c>Providers:&lt;name&gt;:MaxRetries</c>,
/// <c>RetryBaseDelay</c>, <c>RetryMaxDelay</c>) and by job retries (<c>Jobs:MaxAttempts</c>, <c>RetryBaseDelay</c>,
/// <c>RetryMaxDelay</c>): retry <c>n</c> (from 0) waits <c>BaseDelay × 2ⁿ</c>, capped at <see cref="MaxDelay"/>, then
/// jittered to a random 50–100 % of that (so callers failing together do not retry together). A <c>Retry-After</c>
/// from the provider replaces the computed delay when it is not longer than <see cref="MaxDelay"/>; a longer one means
/// no retry (waiting that long is not this policy's call: the caller moves on, to a fallback or a failure).
/// After <see cref="MaxRetries"/> retries there is none.
/// </summary>
/// <param name="BaseDelay">The first retry's delay before jitter.</param>
/// <param name="MaxDelay">The longest delay, before jitter; also the longest <c>Retry-After</c> honoured.</param>
/// <param name="MaxRetries">Retries allowed after the first attempt (0: none).</param>
internal readonly record struct Backoff(TimeSpan BaseDelay, TimeSpan MaxDelay, int MaxRetries)
{
    /// <summary>The delay before retry number <paramref name="attempt"/> (0 = the first retry), or null when there is none.</summary>
    /// <param name="attempt">Retries made so far.</param>
    /// <param name="retryAfter">The provider's <c>Retry-After</c>, if it sent one.</param>
    public TimeSpan? NextDelay(int attempt, TimeSpan? retryAfter) => NextDelay(attempt, retryAfter, Random.Shared.NextDouble());

    /// <summary>As <see cref="NextDelay(int, TimeSpan?)"/>, with the random sample given (tests pin the jitter with it).</summary>
    /// <param name="attempt">Retries made so far.</param>
    /// <param name="retryAfter">The provider's <c>Retry-After</c>, if it sent one.</param>
    /// <param name="sample">A number in [0, 1): 0 gives half the capped delay, values near 1 nearly all of it.</param>
    public TimeSpan? NextDelay(int attempt, TimeSpan? retryAfter, double sample)
    {
        if (attempt < 0 || attempt >= MaxRetries)
        {
            return null;
        }

        if (retryAfter is { } wait)
        {
            return wait <= MaxDelay ? (wait < TimeSpan.Zero ? TimeSpan.Zero : wait) : null;
        }

        return TimeSpan.FromMilliseconds(Capped(attempt) * (0.5 + (Math.Clamp(sample, 0, 1) * 0.5)));
    }

    /// <summary>The delay of retry <paramref name="attempt"/> before jitter, in milliseconds: exponential, capped.</summary>
    private double Capped(int attempt)
    {
        var cap = Math.Max(0, MaxDelay.TotalMilliseconds);
        var first = Math.Max(0, BaseDelay.TotalMilliseconds);
        if (first == 0)
        {
            return 0; // never 0 × ∞ (a NaN) for a large attempt
        }

        return Math.Min(first * Math.Pow(2, Math.Min(attempt, 1024)), cap);
    }
}
