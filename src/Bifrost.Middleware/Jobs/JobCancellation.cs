namespace Bifrost.Middleware.Jobs;

/// <summary>
/// Tells this instance's job workers that cancellation was requested for a job, so a job running here stops starting
/// new work at once instead of at its next look at the store. The gateway signals it after recording a cancel request;
/// a shared store signals it when another instance recorded one (the PostgreSQL store does, from its notifications).
/// Only a hint: the workers also read the flag from the store, so a missed signal delays the stop, it never loses it.
/// </summary>
public interface IJobCancellationSignal
{
    /// <summary>Cancellation was requested for <paramref name="jobId"/> (whether or not it runs on this instance).</summary>
    /// <param name="jobId">The job id.</param>
    void CancellationRequested(string jobId);
}

/// <summary>
/// The jobs running on this instance, by id, with the token that tells each one its cancellation was requested.
/// A signal for a job that is not (yet) registered is kept for a while, so a cancel that lands between a claim and
/// the registration still reaches the run.
/// </summary>
internal sealed class JobCancellationRegistry(TimeProvider time) : IJobCancellationSignal
{
    private static readonly TimeSpan KeepEarlySignals = TimeSpan.FromMinutes(1);
    private readonly Lock _lock = new();
    private readonly Dictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _early = new(StringComparer.Ordinal);

    public void CancellationRequested(string jobId)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        CancellationTokenSource? source;
        lock (_lock)
        {
            if (!_running.TryGetValue(jobId, out source))
            {
                var now = time.GetUtcNow();
                if (_early.Count >= 1024)
                {
                    foreach (var stale in _early.Where(e => now - e.Value > KeepEarlySignals).Select(e => e.Key).ToList())
                    {
                        _early.Remove(stale);
                    }
                }

                _early[jobId] = now;
                return;
            }
        }

        Cancel(source);
    }

    /// <summary>Registers a running job's cancel-request source until the returned handle is disposed.</summary>
    public Registration Register(string jobId, CancellationTokenSource cancelRequested)
    {
        bool signalled;
        lock (_lock)
        {
            _running[jobId] = cancelRequested;
            signalled = _early.Remove(jobId);
        }

        if (signalled)
        {
            Cancel(cancelRequested);
        }

        return new Registration(this, jobId, cancelRequested);
    }

    private void Unregister(string jobId, CancellationTokenSource source)
    {
        lock (_lock)
        {
            if (_running.TryGetValue(jobId, out var current) && ReferenceEquals(current, source))
            {
                _running.Remove(jobId);
            }
        }
    }

    private static void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The run ended meanwhile.
        }
    }

    internal readonly struct Registration(JobCancellationRegistry registry, string jobId, CancellationTokenSource source) : IDisposable
    {
        public void Dispose() => registry.Unregister(jobId, source);
    }
}
