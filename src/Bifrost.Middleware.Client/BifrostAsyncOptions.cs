namespace Bifrost.Middleware.Client;

/// <summary>How an async job is submitted and polled.</summary>
public sealed class BifrostAsyncOptions
{
    /// <summary>
    /// The wait between polls (default 1 second). A poll answer's <c>Retry-After</c> header, when the gateway sends
    /// one, replaces it for the next wait.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long <see cref="BifrostAsyncJob{T}.WaitForResultAsync"/> polls before it gives up with a
    /// <see cref="TimeoutException"/> (default 10 minutes, the gateway's default <c>Jobs:MaxRunDuration</c>;
    /// <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> for none). The job itself is not cancelled: poll it
    /// again later by its id.
    /// </summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long the gateway keeps the result after the job finished (<c>x-bf-async-job-result-ttl</c>, whole seconds);
    /// <see langword="null"/> for the gateway's default (Bifrost: 1 hour).
    /// </summary>
    public TimeSpan? ResultTtl { get; set; }

    /// <summary>The clock the waits and the timeout use (tests pass a fake one).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Throws when a value cannot work, before anything is sent.</summary>
    internal void Validate()
    {
        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "The poll interval must be positive.");
        }

        if (Timeout <= TimeSpan.Zero && Timeout != System.Threading.Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "The timeout must be positive or Timeout.InfiniteTimeSpan.");
        }

        if (ResultTtl is { } ttl && ttl < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(ResultTtl), ttl, "The result TTL must be at least one second.");
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}
