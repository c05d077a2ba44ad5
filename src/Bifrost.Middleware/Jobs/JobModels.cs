namespace Bifrost.Middleware.Jobs;

/// <summary>The life of a job.</summary>
public enum JobStatus
{
    /// <summary>Stored, waiting for a worker.</summary>
    Pending = 0,

    /// <summary>A worker holds a lease and runs it.</summary>
    Processing = 1,

    /// <summary>Finished with a result.</summary>
    Completed = 2,

    /// <summary>Finished with an error.</summary>
    Failed = 3,

    /// <summary>Cancelled on request.</summary>
    Cancelled = 4,
}

/// <summary>A job to store.</summary>
public sealed class NewJob
{
    /// <summary>The job id (unique; the gateway creates ids such as <c>job-...</c>).</summary>
    public required string Id { get; init; }

    /// <summary>What the job does, e.g. <c>chat_completion</c>; selects the handler.</summary>
    public required string Kind { get; init; }

    /// <summary>Who may see it (a hashed credential or user id, never a raw key).</summary>
    public required string Owner { get; init; }

    /// <summary>The request, serialized (UTF-8 JSON for inference jobs).</summary>
    public required ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>How long the result is kept after the job finished.</summary>
    public required TimeSpan ResultTtl { get; init; }

    /// <summary>How many runs may fail with a retryable error before the job fails for good.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>
    /// The W3C <c>traceparent</c> of the span that submitted the job, or null: the job's run span links to it, so a trace
    /// viewer leads from the submit to the run. Stores keep it as given.
    /// </summary>
    public string? TraceParent { get; init; }
}

/// <summary>A stored job, as read from the store (a snapshot: it does not change when the store does).</summary>
public sealed class JobRecord
{
    /// <summary>The job id.</summary>
    public required string Id { get; init; }

    /// <summary>What the job does.</summary>
    public required string Kind { get; init; }

    /// <summary>Who may see it.</summary>
    public required string Owner { get; init; }

    /// <summary>The serialized request.</summary>
    public required ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>The W3C <c>traceparent</c> of the span that submitted the job (<see cref="NewJob.TraceParent"/>), or null.</summary>
    public string? TraceParent { get; init; }

    /// <summary>The status.</summary>
    public JobStatus Status { get; init; }

    /// <summary>Incremented by every claim; the fencing token of leases.</summary>
    public long Version { get; init; }

    /// <summary>Runs that failed with a retryable error so far.</summary>
    public int Attempts { get; init; }

    /// <summary>Runs allowed.</summary>
    public int MaxAttempts { get; init; }

    /// <summary>When it was stored.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When a worker first started it.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When it finished.</summary>
    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>When the finished job's result will be deleted.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Result lifetime after completion.</summary>
    public TimeSpan ResultTtl { get; init; }

    /// <summary>A pending job is not claimed before this time (retry backoff).</summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>The worker holding the lease, while processing.</summary>
    public string? LeaseOwner { get; init; }

    /// <summary>When the lease ends unless renewed.</summary>
    public DateTimeOffset? LeaseExpiresAt { get; init; }

    /// <summary>Whether cancellation was requested while it ran.</summary>
    public bool CancellationRequested { get; init; }

    /// <summary>The last progress a worker saved, if any (kept after the job finished).</summary>
    public ReadOnlyMemory<byte>? Progress { get; init; }

    /// <summary>The HTTP status of the result or error, once finished.</summary>
    public int? StatusCode { get; init; }

    /// <summary>The result body (the JSON the synchronous call would have answered) or the error body, once finished.</summary>
    public ReadOnlyMemory<byte>? Result { get; init; }

    /// <summary>Whether the job has finished (completed, failed or cancelled).</summary>
    public bool IsFinished => Status is JobStatus.Completed or JobStatus.Failed or JobStatus.Cancelled;
}

/// <summary>A worker's claim on a job. Its <see cref="Version"/> fences every later write.</summary>
public sealed class JobLease
{
    /// <summary>Creates a lease.</summary>
    /// <param name="job">The job as claimed (status processing).</param>
    /// <param name="workerId">The worker.</param>
    public JobLease(JobRecord job, string workerId)
    {
        Job = job ?? throw new ArgumentNullException(nameof(job));
        WorkerId = workerId ?? throw new ArgumentNullException(nameof(workerId));
    }

    /// <summary>The job as it was when claimed.</summary>
    public JobRecord Job { get; }

    /// <summary>The job id.</summary>
    public string JobId => Job.Id;

    /// <summary>The fencing token.</summary>
    public long Version => Job.Version;

    /// <summary>The worker holding it.</summary>
    public string WorkerId { get; }
}

/// <summary>The end of a run: a status code and a body (result or error JSON).</summary>
/// <param name="StatusCode">The HTTP status the synchronous call would have answered.</param>
/// <param name="Body">The body it would have answered.</param>
public readonly record struct JobOutcome(int StatusCode, ReadOnlyMemory<byte> Body);

/// <summary>What one owner holds in a job store (see <see cref="IJobStore.GetOwnerUsageAsync"/>).</summary>
/// <param name="UnfinishedJobs">Pending and processing jobs.</param>
/// <param name="RunningJobs">Processing jobs whose lease has not run out.</param>
/// <param name="StoredBytes">Bytes of the owner's stored, unexpired jobs: request payloads plus results.</param>
public readonly record struct JobOwnerUsage(long UnfinishedJobs, long RunningJobs, long StoredBytes);
