using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Jobs;

/// <summary>
/// Submits jobs: admission control (the global queue limit, then the owner's queue and storage quotas), then the store
/// (durable before the reply), then the doorbell. Also answers how many bytes an owner may still store (file uploads).
/// </summary>
internal sealed class AsyncJobService(IJobStore store, JobDoorbell doorbell, IFileStore files, IOptions<BifrostOptions> options, TimeProvider time, Diagnostics.OperationalMetrics metrics)
{
    /// <summary>How long an owner's file bytes, read for a submission, are reused for the next submissions of that owner.</summary>
    private static readonly TimeSpan FileBytesReuse = TimeSpan.FromSeconds(1);

    private readonly JobsOptions _options = options.Value.Jobs;
    private readonly ConcurrentDictionary<string, int> _submittingByOwner = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (long Bytes, long Timestamp)> _fileBytes = new(StringComparer.Ordinal);
    private readonly AdmissionFigures _figures = new(store, time);
    private int _submitting;

    public JobsOptions Options => _options;

    public IJobStore Store => store;

    /// <remarks>
    /// Submissions of this instance still between the count and the store count against the limit too, so concurrent
    /// submits never overshoot it on one instance (a submit that just stored may be counted twice: the check errs on the
    /// side of a 429). Several instances sharing a store may overshoot by their concurrent submissions.
    /// </remarks>
    public async Task<JobRecord> SubmitAsync(string kind, ReadOnlyMemory<byte> payload, string owner, TimeSpan? resultTtl, CancellationToken cancellationToken, string? id = null)
    {
        var inFlight = Interlocked.Increment(ref _submitting);
        var ownerInFlight = _submittingByOwner.AddOrUpdate(owner, 1, static (_, n) => n + 1);
        try
        {
            return await SubmitCoreAsync(kind, payload, owner, resultTtl, inFlight - 1, ownerInFlight - 1, id, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _submitting);
            if (_submittingByOwner.AddOrUpdate(owner, 0, static (_, n) => n - 1) <= 0)
            {
                _submittingByOwner.TryRemove(new KeyValuePair<string, int>(owner, 0));
            }
        }
    }

    /// <summary>Bytes the owner may still store (files and jobs) under <c>Jobs:MaxStoredBytesPerOwner</c>; 0 or less when full.</summary>
    public async Task<long> RemainingBytesAsync(string owner, CancellationToken cancellationToken)
    {
        var usage = await store.GetOwnerUsageAsync(owner, cancellationToken).ConfigureAwait(false);
        var fileBytes = await FileBytesAsync(owner, fresh: true, cancellationToken).ConfigureAwait(false);
        return _options.MaxStoredBytesPerOwner - usage.StoredBytes - fileBytes;
    }

    /// <summary>The 413 of an upload that does not fit in the owner's storage quota (nothing of it is kept), counted as an admission refusal: throw it.</summary>
    public BifrostException StorageFullForUpload(long remaining) => metrics.Refused(BifrostErrors.TooLarge(
        "owner_storage_full",
        remaining <= 0
            ? $"Your stored files and job results already take the storage allowed per caller ({_options.MaxStoredBytesPerOwner} bytes). Delete files, or wait for job results to expire, and upload again."
            : $"The file does not fit in the storage left for you ({remaining} of {_options.MaxStoredBytesPerOwner} bytes allowed per caller). Delete files, or wait for job results to expire, and upload again.",
        "file"), Diagnostics.OperationalTelemetry.FileUploadSource);

    /// <summary>Drops the owner's file bytes kept for submissions (after an upload, so the next submission counts it).</summary>
    public void ForgetFileBytes(string owner) => _fileBytes.TryRemove(owner, out _);

    private async Task<long> FileBytesAsync(string owner, bool fresh, CancellationToken cancellationToken)
    {
        if (!fresh && _fileBytes.TryGetValue(owner, out var cached) && time.GetElapsedTime(cached.Timestamp) < FileBytesReuse)
        {
            return cached.Bytes;
        }

        var bytes = await files.GetOwnerBytesAsync(owner, cancellationToken).ConfigureAwait(false);
        if (_fileBytes.Count > 10_000)
        {
            _fileBytes.Clear(); // a bound, not an eviction policy: the figures are cheap to read again
        }

        _fileBytes[owner] = (bytes, time.GetTimestamp());
        return bytes;
    }

    private async Task<JobRecord> SubmitCoreAsync(string kind, ReadOnlyMemory<byte> payload, string owner, TimeSpan? resultTtl, int othersInFlight, int ownerOthersInFlight, string? id, CancellationToken cancellationToken)
    {
        // Each check first on the figures carried forward (AdmissionFigures: never below the truth on one instance), and
        // only when they would refuse, again on figures read fresh from the store.
        var unfinished = await _figures.UnfinishedAsync(fresh: false, cancellationToken).ConfigureAwait(false);
        if (unfinished + othersInFlight >= _options.MaxQueuedJobs)
        {
            unfinished = await _figures.UnfinishedAsync(fresh: true, cancellationToken).ConfigureAwait(false);
            if (unfinished + othersInFlight >= _options.MaxQueuedJobs)
            {
                throw metrics.Refused(BifrostErrors.TooManyRequests(
                    "job_queue_full",
                    $"The job queue is full ({unfinished} unfinished jobs, limit {_options.MaxQueuedJobs}). Retry later.",
                    _options.QueueFullRetryAfter), Diagnostics.OperationalTelemetry.JobQueueSource);
            }
        }

        // The owner's share: a caller that fills its own queue or storage is refused while others are still served. As above,
        // this instance's concurrent submissions of the owner count too.
        var usage = await _figures.OwnerAsync(owner, fresh: false, cancellationToken).ConfigureAwait(false);
        var fileBytes = await FileBytesAsync(owner, fresh: false, cancellationToken).ConfigureAwait(false);
        if (usage.UnfinishedJobs + ownerOthersInFlight >= _options.MaxQueuedJobsPerOwner
            || usage.StoredBytes + fileBytes + payload.Length > _options.MaxStoredBytesPerOwner)
        {
            usage = await _figures.OwnerAsync(owner, fresh: true, cancellationToken).ConfigureAwait(false);
        }

        if (usage.UnfinishedJobs + ownerOthersInFlight >= _options.MaxQueuedJobsPerOwner)
        {
            throw metrics.Refused(BifrostErrors.TooManyRequests(
                "owner_queue_full",
                $"You have {usage.UnfinishedJobs} unfinished jobs, the most one caller may have queued ({_options.MaxQueuedJobsPerOwner}). Retry when some have finished.",
                _options.QueueFullRetryAfter), Diagnostics.OperationalTelemetry.JobQueueSource);
        }

        var stored = usage.StoredBytes + fileBytes;
        if (stored + payload.Length > _options.MaxStoredBytesPerOwner)
        {
            throw metrics.Refused(BifrostErrors.TooManyRequests(
                "owner_storage_full",
                $"Your stored job results and files take {stored} bytes; with this request you would exceed the storage allowed per caller ({_options.MaxStoredBytesPerOwner} bytes). Retry when results have expired, or delete files.",
                _options.QueueFullRetryAfter), Diagnostics.OperationalTelemetry.JobQueueSource);
        }

        var job = await store.EnqueueAsync(
            new NewJob
            {
                Id = id ?? Guid.CreateVersion7().ToString(),
                Kind = kind,
                Owner = owner,
                Payload = payload,
                ResultTtl = resultTtl ?? _options.ResultTtl,
                MaxAttempts = _options.MaxAttempts,
                TraceParent = System.Diagnostics.Activity.Current is { IdFormat: System.Diagnostics.ActivityIdFormat.W3C } submit ? submit.Id : null,
            },
            cancellationToken).ConfigureAwait(false);
        _figures.Stored(owner, payload.Length);
        doorbell.Ring(owner);
        return job;
    }

    /// <summary>The caller's job of this kind with its result as a stream (see <see cref="IJobStore.OpenResultAsync"/>), or null like <see cref="FindAsync"/>. The caller disposes it.</summary>
    public async Task<JobResultReader?> OpenResultAsync(string id, string kind, string owner, CancellationToken cancellationToken)
    {
        var reader = await store.OpenResultAsync(id, cancellationToken).ConfigureAwait(false);
        if (reader is null || (reader.Job.Owner == owner && reader.Job.Kind == kind))
        {
            return reader;
        }

        await reader.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    /// <summary>The caller's job of this kind, or null (unknown, expired, another owner's, another route's: all look the same, 404).</summary>
    public async Task<JobRecord?> FindAsync(string id, string kind, string owner, CancellationToken cancellationToken)
    {
        var job = await store.GetAsync(id, cancellationToken).ConfigureAwait(false);
        return job is not null && job.Owner == owner && job.Kind == kind ? job : null;
    }
}
