namespace Bifrost.Middleware.Jobs;

/// <summary>Runs one kind of job. Throws <see cref="BifrostException"/> for failures that have an answer for the client.</summary>
internal interface IJobHandler
{
    string Kind { get; }

    /// <summary>Whether a run is cut off after <c>Jobs:MaxRunDuration</c> (false for handlers that bound their own time, e.g. batches).</summary>
    bool HasRunDeadline => true;

    /// <param name="execution">The job, its lease, progress reporting and the cancellation request.</param>
    /// <param name="cancellationToken">Cancelled when the run must stop at once (shutdown timeout, lease lost).</param>
    Task<JobRunResult> ExecuteAsync(JobExecution execution, CancellationToken cancellationToken);
}

/// <summary>How a run ended: its outcome, and whether it ended because cancellation was requested.</summary>
internal readonly record struct JobRunResult(JobOutcome Outcome, bool Cancelled = false);

/// <summary>One run of a job: the lease, progress saving (fenced), and the caller's cancellation request.</summary>
internal sealed class JobExecution(JobLease lease, IJobStore store, IServiceProvider services, CancellationToken cancellationRequested)
{
    /// <summary>The application's services (handlers resolve what they need per run).</summary>
    public IServiceProvider Services => services;

    public JobRecord Job => lease.Job;

    public JobLease Lease => lease;

    /// <summary>Cancelled when the job's owner asked for cancellation (e.g. a batch cancel); handlers may finish gracefully.</summary>
    public CancellationToken CancellationRequested => cancellationRequested;

    /// <summary>Saves progress; false when the lease was lost (the run should stop).</summary>
    public ValueTask<bool> SaveProgressAsync(ReadOnlyMemory<byte> progress, CancellationToken cancellationToken) =>
        store.SaveProgressAsync(lease, progress, cancellationToken);
}

