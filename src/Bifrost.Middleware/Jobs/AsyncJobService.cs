using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Jobs;

/// <summary>Submits jobs: admission control, then the store (durable before the reply), then the doorbell.</summary>
internal sealed class AsyncJobService(IJobStore store, JobDoorbell doorbell, IOptions<BifrostOptions> options)
{
    private readonly JobsOptions _options = options.Value.Jobs;
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
        try
        {
            return await SubmitCoreAsync(kind, payload, owner, resultTtl, inFlight - 1, id, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _submitting);
        }
    }

    private async Task<JobRecord> SubmitCoreAsync(string kind, ReadOnlyMemory<byte> payload, string owner, TimeSpan? resultTtl, int othersInFlight, string? id, CancellationToken cancellationToken)
    {
        var unfinished = await store.CountUnfinishedAsync(cancellationToken).ConfigureAwait(false);
        if (unfinished + othersInFlight >= _options.MaxQueuedJobs)
        {
            throw new BifrostException(new BifrostError
            {
                IsBifrostError = true,
                StatusCode = 429,
                Error = new BifrostErrorDetail
                {
                    Type = "rate_limit_error",
                    Code = "job_queue_full",
                    Message = $"The job queue is full ({unfinished} unfinished jobs, limit {_options.MaxQueuedJobs}). Retry later.",
                },
            })
            {
                RetryAfter = _options.QueueFullRetryAfter,
                IsRetryable = true,
            };
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
            },
            cancellationToken).ConfigureAwait(false);
        doorbell.Ring();
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
